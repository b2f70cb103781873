import ArgumentParser
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
    @Option var output = "bench/results"

    func run() async throws {
        guard subscribers <= cap else { throw ValidationError("--subscribers must not exceed --cap") }
        let pool = PostgresPool(url: databaseURL, maxConnections: 2)
        try await Migrator(pool: pool, migrations: Migration.bundled()).migrate()
        let nats = try await NATSConnection.connect(url: natsURL, name: "todo-bench")
        try await PipelineStreams.ensureAll(nats.jetStream, replicas: 1)

        // One user, one group: every stream subscribes to the same group.
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let userID = UUID()
        let group = try GroupID("bench-sse-\(tag)")
        let username = "bench_\(tag)"
        try await pool.withTransaction { db in
            try db.query("INSERT INTO users (user_id, username, password_hash) VALUES ($1, $2, 'not-a-hash')", userID, username)
            try db.query("INSERT INTO groups (group_id, name, created_by) VALUES ($1, 'sse bench', $2)", group.rawValue, userID)
            try db.query("INSERT INTO group_members (group_id, user_id, role) VALUES ($1, $2, 'owner')", group.rawValue, userID)
        }
        let secret = (0..<4).map { _ in UUID().uuidString }.joined()
        let token = try await AccessTokens(secret: secret, lifetime: .seconds(3600))
            .issue(for: AuthenticatedUser(userID: userID, username: username))

        let server = Process()
        server.executableURL = URL(fileURLWithPath: todo)
        server.arguments = ["streamer"]
        server.environment = ProcessInfo.processInfo.environment.merging([
            "NATS_URL": natsURL, "DATABASE_URL": databaseURL, "STREAMER_ADDR": "\(host):\(port)",
            "JWT_SECRET": secret, "SSE_MAX_STREAMS": "\(cap)", "MAX_CONNECTIONS": "\(cap + 1000)",
        ]) { $1 }
        server.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try server.run()
        defer { if server.isRunning { server.terminate(); server.waitUntilExit() } }
        try await waitUntilReady("http://\(host):\(port)/readyz")
        try await Task.sleep(for: .seconds(1))
        let baseline = try residentKilobytes(of: server.processIdentifier)

        let clients = EpollSSEClients(port: port, path: "/events?group_id=\(group.rawValue)", token: token)
        var report = Report(title: "streamer benchmark", header: ["measurement", "value", "unit", "note"])
        let subject = GroupSubject.event(group)
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

        // 2. Fan-out latency of one event to every subscriber.
        let first = try await fanOut(clients, count: subscribers, nats: nats, subject: subject, group: group, userID: userID, version: &version)
        report.rows.append(["fan-out of one event to \(subscribers) subscribers, p50", ms(first.milliseconds(at: 50)), "ms", "JetStream publish → last byte at each client"])
        report.rows.append(["fan-out to \(subscribers), p99", ms(first.milliseconds(at: 99)), "ms", "target ≤ 100 ms"])
        report.rows.append(["fan-out to \(subscribers), max", ms(first.maxMilliseconds), "ms", "\(events) events, \(first.count) deliveries"])

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
        let second = try await fanOut(clients, count: held, nats: nats, subject: subject, group: group, userID: userID, version: &version)
        report.rows.append(["fan-out to \(held) subscribers, p50 / p99", "\(ms(second.milliseconds(at: 50))) / \(ms(second.milliseconds(at: 99)))", "ms", "max \(ms(second.maxMilliseconds)) ms"])

        report.notes = [
            "The streamer is the release binary in its own process with its default settings (SSE_MAX_STREAMS \(cap)); the clients are plain HTTP/1.1 sockets read by one thread of the bench process (epoll and read(2), `EpollSSEClients`), sharing the machine's 2 cores with the streamer and nats-server.",
            "Each event is a todo.created event published to JetStream on the group's event subject; a delivery is timed from just before the publish to the moment its `todo-event` bytes arrive at a client. Events are published 300 ms apart.",
            "Resident memory is VmRSS from /proc (kernel socket buffers are not in it): everything the process allocates per stream — NIO channel and HTTP/1 handlers, Hummingbird's connection task (waiting for the next request), the stream's `SSEConnectionHandler` and `LiveStream`. Streams are served in the connection pipeline and written by their event loop; heartbeats come from one ticker per process.",
            "The clients' thread competes with the streamer's two event loops for the 2 cores during a fan-out; on loopback, each write also runs the receiving socket's TCP path in the streamer's context.",
        ]
        clients.closeAll()
        print(report.markdown())
        print("written to \(try report.write(to: output, name: "streamer"))")
        await nats.drain()
        await pool.shutdown()
    }

    /// Publishes `events` events, 300 ms apart, and returns every client's delay for each.
    private func fanOut(_ clients: EpollSSEClients, count: Int, nats: NATSConnection, subject: GroupSubject, group: GroupID,
                        userID: UUID, version: inout Int64) async throws -> LatencyHistogram {
        let startIndex = Int(version)
        var sent: [UInt64] = []
        for _ in 0..<events {
            version += 1
            var event = TodoEvent(eventID: "evt-\(group.rawValue)-\(version)", commandID: "cmd-\(version)", eventType: .todoCreated,
                                  groupID: group.rawValue, todoID: "todo-\(version)", actorUserID: userID.uuidString.lowercased(),
                                  actorName: "bench", occurredAt: Date(), shardID: subject.shard, groupVersion: version)
            event.title = "fan-out \(version)"; event.status = .todo; event.position = Double(version); event.version = 1
            let payload = try MessageCoding.encoder().encode(event)
            sent.append(DispatchTime.now().uptimeNanoseconds)
            _ = try await nats.jetStream.publish(subject.subject, payload, msgID: event.eventID)
            try await Task.sleep(for: .milliseconds(300))
        }
        let arrivals = try await clients.arrivals(waitingFor: Int(version), timeout: .seconds(30))
        var delays = LatencyHistogram()
        for (eventsBefore, perClient) in arrivals.prefix(count) {
            for (offset, sentAt) in sent.enumerated() {
                let index = startIndex + offset - eventsBefore
                guard index >= 0, index < perClient.count else { throw ValidationError("a client missed event \(startIndex + offset + 1)") }
                delays.record(nanoseconds: perClient[index] &- sentAt)
            }
        }
        print("fan-out to \(count): p50 / p90 / p99 / p99.9 / max \(delays.summary) ms")
        return delays
    }

    private func ms(_ milliseconds: Double) -> String { String(format: "%.1f", milliseconds) }

    private func residentKilobytes(of pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let value = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) })
        else { throw ValidationError("no VmRSS for \(pid)") }
        return value
    }
}

/// Many raw SSE clients on one event loop. Each records when the bytes of its n-th `todo-event`
/// arrived; that is all the benchmark needs (events arrive in order, exactly once).
final class SSEClients: @unchecked Sendable {
    private let group: EventLoopGroup
    private let host: String
    private let port: Int
    private let request: String
    private let expectedEvents: Int
    private let captureCommandIDs: Bool
    /// Each open stream with the number of events published before it opened (it never sees those).
    private var probes: [(channel: Channel, probe: SSEProbe, eventsBefore: Int)] = []

    init(group: EventLoopGroup, host: String, port: Int, path: String, token: String, expectedEvents: Int, captureCommandIDs: Bool = false) {
        self.group = group
        self.host = host
        self.port = port
        request = Self.request(host: host, port: port, path: path, token: token)
        self.expectedEvents = expectedEvents
        self.captureCommandIDs = captureCommandIDs
    }

    static func request(host: String, port: Int, path: String, token: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAuthorization: Bearer \(token)\r\nAccept: text/event-stream\r\n\r\n"
    }

    /// Command ids and arrival times every stream received since the last call.
    func drainReceived() async throws -> [(commandID: String, at: UInt64)] {
        var all: [(commandID: String, at: UInt64)] = []
        for (channel, probe, _) in probes {
            all += try await channel.eventLoop.submit { probe.drainReceived() }.get()
        }
        return all
    }

    /// How many streams the server has closed.
    func closedCount() async throws -> Int {
        try await probes.asyncCount { try await $0.probe.closedFuture($0.channel) }
    }

    var count: Int { probes.count }

    /// Opens `count` more streams, at most 200 connecting at a time (the listen backlog is 256).
    /// Returns how many were refused (status other than 200).
    func open(_ count: Int, eventsBefore: Int) async throws -> (opened: Int, refused: Int) {
        try await open(Array(repeating: request, count: count), eventsBefore: eventsBefore)
    }

    /// Opens one stream per request (each its own path and token).
    func open(_ requests: [String], eventsBefore: Int) async throws -> (opened: Int, refused: Int) {
        let count = requests.count
        var refused = 0
        var next = 0
        let started = Date()
        try await withThrowingTaskGroup(of: (Channel, SSEProbe, Int).self) { tasks in
            func add() {
                let probe = SSEProbe(request: requests[next], expectedEvents: expectedEvents, eventLoop: group.next(),
                                     captureCommandIDs: captureCommandIDs)
                let bootstrap = ClientBootstrap(group: group).channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(probe) }
                }
                let (host, port) = (self.host, self.port)
                tasks.addTask {
                    let channel = try await bootstrap.connect(host: host, port: port).get()
                    let status = try await probe.status.futureResult.get()
                    return (channel, probe, status)
                }
            }
            while next < min(count, 200) { add(); next += 1 }
            while let (channel, probe, status) = try await tasks.next() {
                if status == 200 { probes.append((channel, probe, eventsBefore)) } else { refused += 1; channel.close(promise: nil) }
                if next < count { add(); next += 1 }
                let done = probes.count + refused
                if done % 2500 == 0 { print("  \(probes.count) streams open (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)") }
            }
        }
        return (count - refused, refused)
    }

    /// Every open client's arrival times (with the events published before it opened), once each
    /// has seen every event up to `events`.
    func arrivals(waitingFor events: Int, timeout: Duration) async throws -> [(Int, [UInt64])] {
        let deadline = ContinuousClock.now + timeout
        while true {
            var all: [(Int, [UInt64])] = []
            var complete = true
            for (channel, probe, eventsBefore) in probes {
                let times = try await channel.eventLoop.submit { probe.arrivals }.get()
                if times.count < events - eventsBefore { complete = false; break }
                all.append((eventsBefore, times))
            }
            if complete { return all }
            guard ContinuousClock.now < deadline else {
                let closed = try await closedCount()
                throw ValidationError("not every stream received \(events) events within \(timeout) (\(closed) closed by the server)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    func closeAll() {
        for (channel, _, _) in probes { channel.close(promise: nil) }
        probes.removeAll()
    }
}

extension Array {
    func asyncCount(_ predicate: (Element) async throws -> Bool) async rethrows -> Int {
        var count = 0
        for element in self where try await predicate(element) { count += 1 }
        return count
    }
}

/// One SSE client connection: sends the request, reports the status, timestamps each
/// `event: todo-event` it sees (matched across reads).
final class SSEProbe: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private static let marker = Array("event: todo-event".utf8)
    private static let statusPrefix = Array("HTTP/1.1 ".utf8)

    let status: EventLoopPromise<Int>
    private let request: String
    private var head: [UInt8] = []
    private var statusKnown = false
    private var matched = 0
    private(set) var arrivals: [UInt64] = []
    private(set) var closed = false
    /// With `captureCommandIDs`, each todo-event's command id and arrival time.
    private let captureCommandIDs: Bool
    private(set) var received: [(commandID: String, at: UInt64)] = []
    private var capturing: [UInt8]?
    private var capturedAt: UInt64 = 0

    init(request: String, expectedEvents: Int, eventLoop: EventLoop, captureCommandIDs: Bool = false) {
        self.request = request
        self.captureCommandIDs = captureCommandIDs
        status = eventLoop.makePromise()
        arrivals.reserveCapacity(expectedEvents)
    }

    /// Takes what was received so far (the probe keeps recording).
    func drainReceived() -> [(commandID: String, at: UInt64)] {
        defer { received.removeAll(keepingCapacity: true) }
        return received
    }

    private static let commandKey = Array(#""command_id":""#.utf8)

    /// The todo-event's lines up to the blank line that ends it: pick the command id out of its JSON.
    private func capture(_ byte: UInt8) {
        capturing!.append(byte)
        let count = capturing!.count
        let newline = UInt8(ascii: "\n")
        guard byte == newline, (count >= 2 && capturing![count - 2] == newline) || count > 65_536 else { return }
        let bytes = capturing!
        capturing = nil
        guard let range = bytes.firstRange(of: Self.commandKey) else { return }
        let rest = bytes[range.upperBound...]
        if let end = rest.firstIndex(of: UInt8(ascii: "\"")) {
            received.append((String(decoding: rest[..<end], as: UTF8.self), capturedAt))
        }
    }

    func closedFuture(_ channel: Channel) async throws -> Bool {
        try await channel.eventLoop.submit { self.closed }.get()
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = DispatchTime.now().uptimeNanoseconds
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            if !statusKnown {
                let take = min(bytes.count, 12 - head.count)
                head.append(contentsOf: bytes.prefix(take))
                start = take
                if head.count == 12 {
                    statusKnown = true
                    let code = head.starts(with: Self.statusPrefix) ? Int(String(decoding: head.suffix(3), as: UTF8.self)) ?? 0 : 0
                    status.succeed(code)
                }
            }
            if captureCommandIDs {
                for byte in bytes[start...] {
                    if capturing != nil { capture(byte) }
                    if match(byte) {
                        arrivals.append(now)
                        capturing = []
                        capturedAt = now
                    }
                }
                return
            }
            // The fast path (no capture): a tight loop over locals. The probe is the measuring
            // instrument and shares the cores with the streamer, so it must cost little per byte.
            let marker = Self.marker
            let first = marker[0]
            var matched = self.matched
            for index in start..<bytes.count {
                let byte = bytes[index]
                if byte == marker[matched] {
                    matched += 1
                    if matched == marker.count {
                        arrivals.append(now)
                        matched = 0
                    }
                } else {
                    matched = byte == first ? 1 : 0
                }
            }
            self.matched = matched
        }
    }

    /// Advances the marker match by one byte; true when the marker is complete.
    private func match(_ byte: UInt8) -> Bool {
        if byte == Self.marker[matched] {
            matched += 1
            if matched == Self.marker.count {
                matched = 0
                return true
            }
        } else {
            matched = byte == Self.marker[0] ? 1 : 0
        }
        return false
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        if !statusKnown { statusKnown = true; status.succeed(0) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !statusKnown { statusKnown = true; status.fail(error) }
        context.close(promise: nil)
    }
}
