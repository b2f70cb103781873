import ArgumentParser
import Contracts
import Foundation
import Histogram
import HTTPAPI

@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "todo-bench",
        abstract: "Benchmarks; each prints a table and writes it under bench/results.",
        subcommands: [FoundationBench.self, PipelineBench.self, HotGroupBench.self, CommandAPIBench.self, StreamerBench.self, SSECapacityBench.self, SSEClientsProcess.self, E2EBench.self, SearchBench.self, ExportBench.self, SchedulerBench.self]
    )
}

/// A markdown report: the table plus the machine and the date it was measured on.
struct Report {
    var title: String
    var rows: [[String]] = []
    var header: [String]
    var notes: [String] = []

    func markdown() -> String {
        var text = "# \(title)\n\n"
        text += "Measured \(Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false))) on \(Machine.describe()).\n\n"
        text += "| " + header.joined(separator: " | ") + " |\n"
        text += "|" + header.map { _ in "---" }.joined(separator: "|") + "|\n"
        for row in rows { text += "| " + row.joined(separator: " | ") + " |\n" }
        if !notes.isEmpty { text += "\n" + notes.map { "- \($0)" }.joined(separator: "\n") + "\n" }
        return text
    }

    /// Writes `<directory>/<day>-<name>.md`. A later run of the same day is appended to that file
    /// as a section of its own, so neither the day's earlier runs nor notes written under them are
    /// lost.
    func write(to directory: String, name: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let day = Date().formatted(.iso8601.year().month().day())
        let path = "\(directory)/\(day)-\(name).md"
        let text: String
        if let earlier = try? String(contentsOfFile: path, encoding: .utf8) {
            // The same report one heading level down ("# title" becomes "## title"); its
            // "Measured …" line tells the runs apart.
            text = earlier + (earlier.hasSuffix("\n") ? "\n" : "\n\n") + "#" + markdown()
        } else {
            text = markdown()
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

enum Machine {
    static func describe() -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        let memory = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("MemTotal") }
            .flatMap { $0.split(separator: " ").dropFirst().first }
            .flatMap { Double($0) }
            .map { String(format: "%.0f GiB", $0 / 1_048_576) } ?? "? GiB"
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpu)), \(memory), all servers on the same machine"
    }
}

func rate(_ count: Int, _ seconds: Double) -> String {
    String(format: "%.0f", Double(count) / seconds)
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

/// Waits until `url` answers 2xx (the service under test is ready).
func waitUntilReady(_ url: String) async throws {
    for _ in 0..<150 {
        if (try? shell(["curl", "-sf", url])) != nil { return }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw ValidationError("no answer from \(url)")
}

/// Runs a program and returns its standard output; throws when it exits non-zero.
@discardableResult
func shell(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw ValidationError("\(arguments[0]) exited with \(process.terminationStatus)") }
    return String(decoding: data, as: UTF8.self)
}

/// Latencies recorded in microseconds (HdrHistogram, 3 significant digits, up to 10 minutes).
struct LatencyHistogram {
    var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)

    mutating func record(nanoseconds: UInt64) { _ = histogram.record(max(1, nanoseconds / 1000)) }

    var count: UInt64 { histogram.totalCount }

    /// Milliseconds at `percentile` (0–100).
    func milliseconds(at percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }

    var maxMilliseconds: Double { Double(histogram.max) / 1000 }

    /// "p50 / p90 / p99 / p99.9 / max" in milliseconds.
    var summary: String {
        guard count > 0 else { return "–" }
        return ([50.0, 90, 99, 99.9].map { milliseconds(at: $0) } + [maxMilliseconds])
            .map { String(format: "%.1f", $0) }.joined(separator: " / ")
    }
}

/// The servers a benchmark talks to (`--nats-url`, `--database-url`; defaults from NATS_URL and
/// DATABASE_URL, else the development stack).
struct BenchServers: ParsableArguments {
    @Option(name: .customLong("nats-url"), help: "NATS server(s); NATS_USER and NATS_PASSWORD(_FILE) add credentials")
    var natsServer = ProcessInfo.processInfo.environment["NATS_URL"] ?? "nats://127.0.0.1:4222"
    /// The server URL with the credentials of NATS_USER and NATS_PASSWORD(_FILE), if set.
    var natsURL: String {
        (try? NATSCredentials.url(natsServer, environment: ProcessInfo.processInfo.environment)) ?? natsServer
    }
    @Option var databaseURL = ProcessInfo.processInfo.environment["DATABASE_URL"]
        ?? "postgres://app:password@127.0.0.1:5432/app?sslmode=disable"
}

/// A kilobyte figure of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`).
func processStatus(_ pid: Int32, _ field: String) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
          let value = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) })
    else { throw ValidationError("no \(field) for \(pid)") }
    return value
}

/// Starts `todo streamer` from the binary at `todo` on `host:port` (its internal listener on
/// port + 1000), verifying tokens of `key`, without read limits; returns once it is ready.
func startStreamer(_ todo: String, servers: BenchServers, host: String, port: Int, key: TokenSigningKey,
                   settings: [String: String] = [:]) async throws -> Process {
    let server = Process()
    server.executableURL = URL(fileURLWithPath: todo)
    server.arguments = ["streamer"]
    server.environment = ProcessInfo.processInfo.environment.merging([
        "NATS_URL": servers.natsURL, "DATABASE_URL": servers.databaseURL, "STREAMER_ADDR": "\(host):\(port)",
        "JWT_PUBLIC_KEYS": key.environment["JWT_PUBLIC_KEYS"]!, "STREAMER_INTERNAL_ADDR": "\(host):\(port + 1000)",
        "READ_RATE_PER_SECOND": "1000000", "READ_RATE_PER_SECOND_PER_USER": "1000000",
    ].merging(settings) { $1 }) { $1 }
    server.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try server.run()
    do {
        try await waitUntilReady("http://\(host):\(port + 1000)/readyz")
    } catch {
        server.terminate()
        throw error
    }
    return server
}
