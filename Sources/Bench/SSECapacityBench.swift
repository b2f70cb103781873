import ArgumentParser
import CEpoll
import Contracts
import Foundation
import HTTPAPI
import Migrations
import NATS
import Postgres
import ServiceSupport
import Sharding

/// `todo-bench sse-capacity`: 100,000 SSE streams held at once across several streamer processes on
/// this machine, the resident memory they cost per stream, and the fan-out of one event to all of
/// them. No process may hold more descriptors than `ulimit -n` (20,000 here), so the streams are
/// split between streamer processes (the replicas of a deployment) and the clients between
/// processes of their own (`todo-bench sse-clients`, one per streamer), each connecting from a
/// loopback address of its own so that no source address runs out of ephemeral ports.
struct SSECapacityBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sse-capacity", abstract: "100k SSE streams across streamer processes: RSS per stream, fan-out of one event to all.")

    @OptionGroup var servers: BenchServers
    @Option(help: "The todo binary to run the streamers from.") var todo = ".build/release/todo"
    @Option(help: "Streamer processes (each with one client process).") var streamers = 7
    @Option(help: "Streams per streamer process (its SSE_MAX_STREAMS).") var perStreamer = 14_500
    @Option(help: "First streamer port (internal port: +1000).") var port = 28_100
    @Option(help: "Events in the fan-out measurement.") var events = 10
    @Option(help: "Milliseconds between the events (longer than one fan-out takes).") var spacing = 3_000
    @Option var output = "bench/results"

    func run() async throws {
        let descriptorLimit = Int(bench_open_files_limit())
        guard perStreamer + 1_000 <= descriptorLimit else {
            throw ValidationError("--per-streamer \(perStreamer) does not fit under ulimit -n \(descriptorLimit) with room for the process's own files")
        }
        let pool = PostgresPool(url: servers.databaseURL, maxConnections: 2)
        try await Migrator(pool: pool, migrations: Migration.bundled()).migrate()
        let nats = try await NATSConnection.connect(url: servers.natsURL, name: "todo-bench")
        try await PipelineStreams.ensureAll(nats.jetStream, replicas: 1)

        let audience = try await SSEBenchGroup.create(in: pool, prefix: "bench-cap", name: "sse capacity bench", tokenLifetime: .seconds(7200))
        let (group, key, token) = (audience.group, audience.key, audience.token)

        var processes: [Process] = []
        var children: [ClientProcess] = []
        defer {
            for process in processes where process.isRunning { process.terminate() }
            for child in children { child.stop() }
            for process in processes { process.waitUntilExit() }
        }
        for index in 0..<streamers {
            processes.append(try await startStreamer(todo, servers: servers, host: "127.0.0.1", port: port + index, key: key, settings: [
                "SSE_MAX_STREAMS": "\(perStreamer)", "MAX_CONNECTIONS": "\(perStreamer + 500)",
                "SSE_MAX_STREAMS_PER_USER": "\(perStreamer)", "DATABASE_POOL_SIZE": "4", "HTTP_HEADER_TIMEOUT_SECONDS": "60",
            ]))
        }
        try await Task.sleep(for: .seconds(1))
        let baseline = try processes.map { try processStatus($0.processIdentifier, "VmRSS:") }
        print("\(streamers) streamers, RSS \(baseline.map { "\($0 / 1024)" }.joined(separator: " ")) MiB")

        // Open every stream: the client processes work at once, each on its own streamer.
        let opening = ContinuousClock.now
        let path = "/events?group_id=\(group.rawValue)"
        for index in 0..<streamers {
            children.append(try ClientProcess(port: port + index, count: perStreamer, source: "127.0.0.\(10 + index)", path: path, token: token))
        }
        var held = 0
        for child in children {
            let answer = try await child.line()
            let fields = answer.split(separator: " ")
            guard fields.count >= 3, fields[0] == "opened", let opened = Int(fields[1]), fields[2] == "0" else {
                throw ValidationError("a client process answered \(answer.debugDescription)")
            }
            held += opened
        }
        let openSeconds = (ContinuousClock.now - opening).seconds
        print("\(held) streams open in \(String(format: "%.1f", openSeconds)) s")
        try await Task.sleep(for: .seconds(5))
        let loaded = try processes.map { try processStatus($0.processIdentifier, "VmRSS:") }
        let descriptors = processes.map { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\($0.processIdentifier)/fd").count) ?? 0 }
        let perStream = Double(zip(loaded, baseline).reduce(0) { $0 + $1.0 - $1.1 }) * 1024 / Double(held)
        print("RSS \(loaded.map { "\($0 / 1024)" }.joined(separator: " ")) MiB; \(Int(perStream)) B per stream; descriptors \(descriptors)")

        // The fan-out: events published apart, each timed to its arrival at every client's socket.
        for child in children { try child.send("idle") }
        for child in children { guard try await child.line() == "ok" else { throw ValidationError("a client process could not go idle") } }
        var sent: [UInt64] = []
        for version in 1...Int64(events) {
            sent.append(try await audience.publishEvent(version: version, on: nats))
            try await Task.sleep(for: .milliseconds(spacing))
        }
        var latency = LatencyHistogram()
        var slowest = [UInt64](repeating: 0, count: events)
        for child in children { try child.send("arrivals \(events)") }
        for child in children {
            let header = try await child.line()
            guard header.hasPrefix("arrivals "), let clients = Int(header.dropFirst(9)) else { throw ValidationError("a client process answered \(header.debugDescription)") }
            for _ in 0..<clients {
                let stamps = try await child.line().split(separator: " ").compactMap { UInt64($0) }
                guard stamps.count == events else { throw ValidationError("a client saw \(stamps.count) of \(events) events") }
                for (index, stamp) in stamps.enumerated() {
                    guard stamp > 0 else { throw ValidationError("the kernel gave no receive timestamp (SO_TIMESTAMPNS)") }
                    latency.record(nanoseconds: stamp &- sent[index])
                    slowest[index] = max(slowest[index], stamp &- sent[index])
                }
            }
        }
        print("fan-out to \(held): p50 / p90 / p99 / p99.9 / max \(latency.summary) ms")
        print("per-event max ms: " + slowest.map { String($0 / 1_000_000) }.joined(separator: " "))

        var report = Report(title: "SSE capacity benchmark", header: ["measurement", "value", "unit", "note"])
        report.rows = [
            ["SSE streams held at once", "\(held)", "streams", "\(streamers) streamer processes × \(perStreamer); one group, one user"],
            ["descriptors per streamer process, most", "\(descriptors.max() ?? 0)", "fds", "ulimit -n \(descriptorLimit)"],
            ["time to open them all", String(format: "%.1f", openSeconds), "s", "\(streamers) client processes at once, each to its own streamer"],
            ["resident memory per stream", String(format: "%.1f", perStream / 1000), "KB",
             "Σ (RSS with the streams − RSS before) / streams; all streamers: \(loaded.reduce(0, +) / 1024) MiB"],
            ["fan-out of one event to all \(held), p50", String(format: "%.0f", latency.milliseconds(at: 50)), "ms", "JetStream publish → the event's bytes at each client's socket"],
            ["fan-out to all, p99", String(format: "%.0f", latency.milliseconds(at: 99)), "ms", "\(events) events, \(latency.count) deliveries"],
            ["fan-out to all, max", String(format: "%.0f", latency.maxMilliseconds), "ms", "slowest delivery of each event: \(slowest.map { String($0 / 1_000_000) }.joined(separator: ", ")) ms"],
        ]
        report.notes = [
            "The streamers are the release binary, each in its own process (SSE_MAX_STREAMS \(perStreamer), DATABASE_POOL_SIZE 4), all subscribed to the group's event subject on one nats-server; the clients are plain HTTP/1.1 sockets in \(streamers) processes of `todo-bench sse-clients`, one per streamer, each connecting from its own loopback address (127.0.0.10…) and read by one thread with epoll at SCHED_IDLE (CPU the servers leave idle), on the machine's 2 cores.",
            "A delivery is timed from just before the JetStream publish to the kernel's receive timestamp (SO_TIMESTAMPNS) at the client's socket: on loopback, the moment the streamer's write handed the bytes to the network. The receiving half of every loopback write runs on the servers' cores; clients on other machines would not cost them that. Events are \(spacing) ms apart.",
            "Resident memory is VmRSS from /proc; kernel socket buffers are not in it.",
        ]
        print(report.markdown())
        print("written to \(try report.write(to: output, name: "sse-capacity"))")
        await nats.drain()
        await pool.shutdown()
    }
}

/// `todo-bench sse-clients` (run by `sse-capacity`): opens `--count` SSE streams to one streamer and
/// answers on stdout to lines on stdin. It prints `opened N REFUSED` once the streams are open;
/// then `idle` → readers at SCHED_IDLE, `ok`; `arrivals E` → `arrivals CLIENTS` and one line per
/// client with the receive timestamps (CLOCK_REALTIME ns) of its first E events; anything else (or
/// the end of stdin, or SIGTERM) ends it. The access token comes in BENCH_SSE_TOKEN, never on the command line.
struct SSEClientsProcess: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sse-clients", abstract: "SSE clients for sse-capacity (one process).",
                                                    shouldDisplay: false)

    @Option var port: Int
    @Option var count: Int
    @Option var source: String
    @Option var path: String
    @Option(help: "Streams waiting for their response head at a time.") var atOnce = 32

    func run() async throws {
        guard let token = ProcessInfo.processInfo.environment["BENCH_SSE_TOKEN"] else { throw ValidationError("BENCH_SSE_TOKEN is not set") }
        let clients = EpollSSEClientGroup(readers: 1, port: port, path: path, token: token, source: source)
        let opened = try await clients.open(count, eventsBefore: 0, atOnce: atOnce)
        let statuses = clients.refusedStatuses.sorted { $0.key < $1.key }.map { "status \($0.key): \($0.value)" }.joined(separator: ", ")
        reply("opened \(opened.opened) \(opened.refused)\(statuses.isEmpty ? "" : " (\(statuses))")\n")
        while let line = readLine() {
            let words = line.split(separator: " ")
            switch words.first {
            case "idle":
                try await clients.runWhenIdle(true)
                reply("ok\n")
            case "arrivals":
                let events = words.count > 1 ? Int(words[1]) ?? 1 : 1
                let all = try await clients.arrivals(waitingFor: events, timeout: .seconds(180))
                var text = "arrivals \(all.count)\n"
                for (_, arrivals) in all { text += arrivals.prefix(events).map { String($0.received) }.joined(separator: " ") + "\n" }
                reply(text)
            default:
                clients.closeAll()
                return
            }
        }
        clients.closeAll()
    }

    /// Unbuffered, so the bench reads each answer as soon as it is written.
    private func reply(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }
}

/// One `todo-bench sse-clients` process and its pipes.
final class ClientProcess: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer = Data()

    init(port: Int, count: Int, source: String, path: String, token: String) throws {
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["sse-clients", "--port", "\(port)", "--count", "\(count)", "--source", source, "--path", path]
        process.environment = ProcessInfo.processInfo.environment.merging(["BENCH_SSE_TOKEN": token]) { $1 }
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    func send(_ line: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// The next line it prints (read on a thread of its own: the read blocks).
    func line() async throws -> String {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                return line
            }
            let handle = output.fileHandleForReading
            let chunk: Data = await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: handle.availableData) }
            }
            guard !chunk.isEmpty else { throw ValidationError("a client process ended (exit \(process.isRunning ? 0 : process.terminationStatus))") }
            buffer.append(chunk)
        }
    }

    /// Ends it at once (SIGTERM): a client process busy opening streams or waiting for arrivals
    /// reads no more of its stdin.
    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
