import ArgumentParser
import CEpoll
import Contracts
import Foundation
import HTTPAPI
import Migrations
import NATS
import NIOCore
import NIOPosix
import Postgres
import ServiceSupport
import Sharding

/// `todo-bench streamer`: how many SSE streams one streamer process holds, its resident memory per
/// idle stream, and how long one event takes to reach every subscriber of a group (JetStream
/// publish → streamer's shared subscription → every client socket), at 10,000 subscribers and at
/// the process's cap. The streamer is the release `todo` binary in its own process; the clients are
/// raw sockets in this process (SwiftNIO), so they cost the streamer exactly what browsers would.
struct StreamerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streamer", abstract: "SSE streams held, RSS per idle stream, fan-out latency to 10k subscribers.")

    @OptionGroup var servers: BenchServers
    var natsURL: String { servers.natsURL }
    var databaseURL: String { servers.databaseURL }
    @Option(help: "The todo binary to run the streamer from.") var todo = ".build/release/todo"
    @Option var host = "127.0.0.1"
    @Option var port = 28081
    @Option(help: "Subscribers of the first fan-out measurement.") var subscribers = 10_000
    @Option(help: "The streamer's SSE_MAX_STREAMS for the run (its default).") var cap = 15_000
    @Option(help: "Events per fan-out measurement.") var events = 30
    @Option(help: "Threads reading the clients' sockets (each its own epoll set).") var readers = 2
    @Flag(help: "Also print each event's slowest delivery (ms), to tell a stall from a spread.") var perEvent = false
    @Option var output = "bench/results"

    func run() async throws {
        guard subscribers <= cap else { throw ValidationError("--subscribers must not exceed --cap") }
        let pool = PostgresPool(url: databaseURL, maxConnections: 2)
        try await Migrator(pool: pool, migrations: Migration.bundled()).migrate()
        let nats = try await NATSConnection.connect(url: natsURL, name: "todo-bench")
        try await PipelineStreams.ensureAll(nats.jetStream, replicas: 1)

        // One user, one group: every stream subscribes to the same group.
        let audience = try await SSEBenchGroup.create(in: pool, prefix: "bench-sse", name: "sse bench", tokenLifetime: .seconds(3600))
        let (group, key, token) = (audience.group, audience.key, audience.token)

        let server = try await startStreamer(todo, servers: servers, host: host, port: port, key: key, settings: [
            "SSE_MAX_STREAMS": "\(cap)", "MAX_CONNECTIONS": "\(cap + 1000)", "SSE_MAX_STREAMS_PER_USER": "\(cap)",
        ])
        defer { if server.isRunning { server.terminate(); server.waitUntilExit() } }
        try await Task.sleep(for: .seconds(1))
        let baseline = try residentKilobytes(of: server.processIdentifier)

        let clients = EpollSSEClientGroup(readers: readers, port: port, path: "/events?group_id=\(group.rawValue)", token: token)
        var report = Report(title: "streamer benchmark", header: ["measurement", "value", "unit", "note"])
        var version: Int64 = 0

        // 1. Streams held, memory per idle stream.
        var opened = try await clients.open(subscribers, eventsBefore: 0)
        guard opened.refused == 0 else { throw ValidationError("\(opened.refused) streams refused below the cap") }
        try await Task.sleep(for: .seconds(3))
        let atSubscribers = try residentKilobytes(of: server.processIdentifier)
        let perStream = Double(atSubscribers - baseline) * 1024 / Double(subscribers)
        print("\(subscribers) streams: RSS \(baseline) → \(atSubscribers) KiB, \(Int(perStream)) B per stream")
        report.rows.append(["idle SSE streams held", "\(subscribers)", "streams", "one group, one user; heartbeat every 15 s"])
        report.rows.append(["resident memory per idle stream", String(format: "%.1f", perStream / 1000), "KB",
                            "(RSS at \(subscribers) streams − RSS at 0) / \(subscribers); target ≤ 20 KB"])

        // 2. Fan-out latency of one event to every subscriber: with the clients' readers taking only
        // CPU the servers leave idle (as clients on machines of their own), then competing for it.
        try await clients.runWhenIdle(true)
        let first = try await fanOut(clients, count: subscribers, nats: nats, audience: audience, version: &version)
        try await clients.runWhenIdle(false)
        let firstCompeting = try await fanOut(clients, count: subscribers, nats: nats, audience: audience, version: &version)
        report.rows.append(["fan-out of one event to \(subscribers) subscribers, p50", ms(first.received.milliseconds(at: 50)), "ms",
                            "JetStream publish → the event's bytes at each client's socket; clients' readers at SCHED_IDLE"])
        report.rows.append(["fan-out to \(subscribers), p99", ms(first.received.milliseconds(at: 99)), "ms", "target ≤ 100 ms"])
        report.rows.append(["fan-out to \(subscribers), max", ms(first.received.maxMilliseconds), "ms", "\(events) events, \(first.received.count) deliveries"])
        report.rows.append(["fan-out to \(subscribers), clients' readers competing for the cores, p50 / p99",
                            "\(ms(firstCompeting.received.milliseconds(at: 50))) / \(ms(firstCompeting.received.milliseconds(at: 99)))", "ms",
                            "readers as ordinary threads; read by them p99 \(ms(firstCompeting.read.milliseconds(at: 99))) ms"])

        // 3. Up to the cap, and one past it.
        opened = try await clients.open(cap - subscribers + 1, eventsBefore: Int(version))
        let held = clients.count
        guard held == cap, opened.refused == 1 else {
            throw ValidationError("expected \(cap) streams and one 503 past the cap; held \(held), refused \(opened.refused)")
        }
        try await Task.sleep(for: .seconds(3))
        let atCap = try residentKilobytes(of: server.processIdentifier)
        print("\(cap) streams (cap), one more refused with 503; RSS \(atCap) KiB")
        report.rows.append(["streams held at the cap (SSE_MAX_STREAMS)", "\(held)", "streams", "stream \(cap + 1) answered 503; RSS \(atCap / 1024) MiB"])
        try await clients.runWhenIdle(true)
        let second = try await fanOut(clients, count: held, nats: nats, audience: audience, version: &version)
        try await clients.runWhenIdle(false)
        let secondCompeting = try await fanOut(clients, count: held, nats: nats, audience: audience, version: &version)
        report.rows.append(["fan-out to \(held) subscribers, p50 / p99", "\(ms(second.received.milliseconds(at: 50))) / \(ms(second.received.milliseconds(at: 99)))", "ms",
                            "max \(ms(second.received.maxMilliseconds)) ms; readers competing: p50 / p99 \(ms(secondCompeting.received.milliseconds(at: 50))) / \(ms(secondCompeting.received.milliseconds(at: 99))) ms"])

        report.notes = [
            "The streamer is the release binary in its own process with its default settings (SSE_MAX_STREAMS \(cap)); the clients are plain HTTP/1.1 sockets read by \(readers) threads of the bench process (epoll and recvmsg(2), `EpollSSEClients`), on the machine's 2 cores with the streamer and nats-server.",
            "Each event is a todo.created event published to JetStream on the group's event subject; a delivery is timed from just before the publish to the kernel's receive timestamp (SO_TIMESTAMPNS) at the client's socket of the last segment of the read that holds its `todo-event` — on loopback, the moment the streamer's write handed it to the network (an event read together with a later one is timed late, never early). Events are published 300 ms apart, \(events) per measurement.",
            "Each measurement runs twice: first with the readers at SCHED_IDLE, so they use only CPU the servers leave idle, as clients on machines of their own would (the target's row); then with the readers as ordinary threads competing with the streamer's event loops for the cores. On loopback the receiving half of each TCP write (the receiver's protocol path and wake-up) still runs in the streamer's write, on the servers' cores, in both.",
            "Resident memory is VmRSS from /proc (kernel socket buffers are not in it): everything the process allocates per stream — NIO channel and HTTP/1 handlers, Hummingbird's connection task (waiting for the next request), the stream's `SSEConnectionHandler` and `LiveStream`. Streams are served in the connection pipeline and written by their event loop; heartbeats come from one ticker per process.",
        ]
        clients.closeAll()
        print(report.markdown())
        print("written to \(try report.write(to: output, name: "streamer"))")
        await nats.drain()
        await pool.shutdown()
    }

    /// One fan-out measurement: each delivery timed to its arrival at the client's socket and to
    /// the client's read of it.
    struct FanOut {
        var received = LatencyHistogram()
        var read = LatencyHistogram()
    }

    /// Publishes `events` events, 300 ms apart, and returns every client's delays for each.
    private func fanOut(_ clients: EpollSSEClientGroup, count: Int, nats: NATSConnection, audience: SSEBenchGroup,
                        version: inout Int64) async throws -> FanOut {
        let startIndex = Int(version)
        var sent: [UInt64] = []
        for _ in 0..<events {
            version += 1
            sent.append(try await audience.publishEvent(version: version, on: nats))
            try await Task.sleep(for: .milliseconds(300))
        }
        let arrivals = try await clients.arrivals(waitingFor: Int(version), timeout: .seconds(30))
        var result = FanOut()
        for (eventsBefore, perClient) in arrivals.prefix(count) {
            for (offset, sentAt) in sent.enumerated() {
                let index = startIndex + offset - eventsBefore
                guard index >= 0, index < perClient.count else { throw ValidationError("a client missed event \(startIndex + offset + 1)") }
                let arrival = perClient[index]
                guard arrival.received > 0 else { throw ValidationError("the kernel gave no receive timestamp (SO_TIMESTAMPNS)") }
                result.received.record(nanoseconds: arrival.received &- sentAt)
                result.read.record(nanoseconds: arrival.read &- sentAt)
            }
        }
        if perEvent {
            var worst = [UInt64](repeating: 0, count: sent.count)
            for (eventsBefore, perClient) in arrivals.prefix(count) {
                for (offset, sentAt) in sent.enumerated() { worst[offset] = max(worst[offset], perClient[startIndex + offset - eventsBefore].received &- sentAt) }
            }
            print("per-event max ms: " + worst.map { String($0 / 1_000_000) }.joined(separator: " "))
        }
        print("fan-out to \(count), at the clients' sockets: p50 / p90 / p99 / p99.9 / max \(result.received.summary) ms")
        print("fan-out to \(count), read by the clients:     p50 / p90 / p99 / p99.9 / max \(result.read.summary) ms")
        return result
    }

    private func ms(_ milliseconds: Double) -> String { String(format: "%.1f", milliseconds) }

    private func residentKilobytes(of pid: Int32) throws -> Int {
        try processStatus(pid, "VmRSS:")
    }
}
