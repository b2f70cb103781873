import ArgumentParser
import Contracts
import Foundation
import HTTPAPI
import NATS
import ServiceSupport

/// `todo-bench command-api`: commands accepted per second through HTTP (POST /api/v1/command,
/// keep-alive connections driven by wrk), next to raw libnats JetStream publishing measured in the
/// same run. command-api runs as its own process (the release `todo` binary), as in production; its
/// rate limits are raised for the run, everything else is the default configuration.
struct CommandAPIBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "command-api", abstract: "HTTP commands accepted/s (wrk) next to raw JetStream publish (wipes the COMMANDS stream).")

    @OptionGroup var servers: BenchServers
    var natsURL: String { servers.natsURL }
    var databaseURL: String { servers.databaseURL }
    @Option(help: "The todo binary to run command-api from.") var todo = ".build/release/todo"
    @Option var address = "127.0.0.1:28080"
    @Option(help: "command-api's internal listener (readiness, metrics)") var internalAddress = "127.0.0.1:29080"
    @Option(help: "Seconds per wrk run.") var seconds = 15
    @Option(help: "Concurrent keep-alive connections, one wrk run each.") var connections: [Int] = [16, 64]
    @Option var output = "bench/results"

    func run() async throws {
        let nats = try await NATSConnection.connect(url: natsURL, name: "todo-bench")
        try? await nats.jetStream.deleteStream(Streams.commands)
        try await PipelineStreams.ensureAll(nats.jetStream, replicas: 1)

        var report = Report(title: "command-api benchmark", header: ["measurement", "rate", "unit", "p50", "p99", "vs raw publish", "command-api CPU per request"])

        // Raw libnats async publish of command-sized messages, in this run.
        let raw = try await RawLimits.publish(natsURL: natsURL)
        report.rows.append(["JetStream async publish, raw libnats (300 B)", String(format: "%.0f", raw), "msg/s", "", "", "100%", ""])
        print("raw publish: \(Int(raw)) msg/s")

        // command-api as its own process.
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: todo)
        server.arguments = ["command-api"]
        server.environment = ProcessInfo.processInfo.environment.merging([
            "NATS_URL": natsURL, "DATABASE_URL": databaseURL, "COMMAND_API_ADDR": address, "COMMAND_API_INTERNAL_ADDR": internalAddress,
            "BCRYPT_COST": "4",
            "COMMAND_RATE_PER_SECOND": "1000000", "REQUEST_RATE_PER_SECOND": "10000000", "AUTH_RATE_PER_MINUTE": "100000",
        ].merging(TokenSigningKey.generate(kid: "bench").environment) { $1 }) { $1 }
        server.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try server.run()
        defer { if server.isRunning { server.terminate(); server.waitUntilExit() } }
        let base = "http://\(address)"
        try await waitUntilReady("http://\(internalAddress)/readyz")

        let user = "bench_\(tag)"
        let session = try curlJSON("\(base)/api/v1/auth/register", body: #"{"username":"\#(user)","password":"bench-password"}"#)
        guard let token = session["access_token"] as? String else { throw ValidationError("register failed: \(session)") }
        var groups: [String] = []
        for index in 0..<8 {
            let group = try curlJSON("\(base)/api/v1/groups", body: #"{"name":"bench \#(index)"}"#, token: token)
            guard let id = group["id"] as? String else { throw ValidationError("create group failed: \(group)") }
            groups.append(id)
        }

        let script = FileManager.default.temporaryDirectory.appendingPathComponent("command-api-\(tag).lua")
        try Self.wrkScript(groups: groups).write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }

        for connectionCount in connections {
            let before = try await nats.jetStream.streamInfo(Streams.commands).messages
            let cpuBefore = ProcessCPU.seconds(of: server.processIdentifier)
            let result = try runWrk(url: "\(base)/api/v1/command", script: script.path, connections: connectionCount, token: token)
            let cpuPerRequest = (ProcessCPU.seconds(of: server.processIdentifier) - cpuBefore) / Double(max(1, result.requests)) * 1e6
            let after = try await nats.jetStream.streamInfo(Streams.commands).messages
            let stored = Int(after - before)
            print("c=\(connectionCount): \(Int(result.rate)) req/s, non-2xx \(result.non2xx), stored \(stored), p50 \(result.p50), p99 \(result.p99), "
                  + "command-api CPU \(Int(cpuPerRequest)) µs/request")
            // wrk counts completed requests; up to one request per connection was still in flight at the end.
            guard result.non2xx == 0, stored >= result.requests, stored <= result.requests + connectionCount else {
                throw ValidationError("c=\(connectionCount): \(result.non2xx) non-2xx answers, \(stored) stored for \(result.requests) requests")
            }
            report.rows.append(["POST /api/v1/command → 202, \(connectionCount) keep-alive connections", String(format: "%.0f", result.rate),
                                "cmd/s", result.p50, result.p99, String(format: "%.0f%%", result.rate / raw * 100),
                                String(format: "%.0f µs", cpuPerRequest)])
        }
        report.notes = [
            "command-api is the release binary in its own process: JWT check, validation, membership check (cached 1 s), JetStream publish and wait for its ack per request.",
            "wrk (2 threads) with \(seconds) s per run; every 202 was checked against the COMMANDS stream's message count (no loss; at most the requests still in flight when wrk stopped on top).",
            "Rate limits raised for the run (COMMAND_RATE_PER_SECOND, REQUEST_RATE_PER_SECOND); all servers, wrk and the API share the machine's cores.",
        ]
        print(report.markdown())
        print("written to \(try report.write(to: output, name: "command-api"))")
        await nats.drain()
    }

    static func wrkScript(groups: [String]) -> String {
        let list = groups.map { "\"\($0)\"" }.joined(separator: ",")
        return """
            local groups = {\(list)}
            local counter = 0
            wrk.method = "POST"
            wrk.headers["Content-Type"] = "application/json"
            wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
            request = function()
              counter = counter + 1
              local group = groups[(counter % #groups) + 1]
              local body = '{"action":"create-todo","group_id":"' .. group .. '","title":"bench ' .. counter .. '","labels":["bench"]}'
              return wrk.format(nil, nil, nil, body)
            end
            """
    }

    struct WrkResult {
        var requests = 0
        var rate = 0.0
        var non2xx = 0
        var p50 = ""
        var p99 = ""
    }

    func runWrk(url: String, script: String, connections: Int, token: String) throws -> WrkResult {
        let output = try shell(["wrk", "-t2", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script, url],
                               environment: ["BENCH_TOKEN": token])
        var result = WrkResult()
        for line in output.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if line.hasPrefix("Requests/sec:") { result.rate = Double(fields.last ?? "") ?? 0 }
            if line.hasPrefix("Non-2xx") { result.non2xx = Int(fields.last ?? "") ?? 0 }
            if line.hasPrefix("50%") { result.p50 = String(fields.last ?? "") }
            if line.hasPrefix("99%") { result.p99 = String(fields.last ?? "") }
            if line.contains("requests in") { result.requests = Int(fields.first ?? "") ?? 0 }
        }
        return result
    }

    func curlJSON(_ url: String, body: String, token: String? = nil) throws -> [String: Any] {
        var arguments = ["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body, url]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        let text = try shell(arguments)
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? ["raw": text]
    }
}
