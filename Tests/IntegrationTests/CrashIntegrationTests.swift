import Contracts
import DataSink
import Foundation
import NATS
import Postgres
import ServiceSupport
import Sharding
import Testing

@Suite("Crashes: kill -9 of the engine and the sink")
struct CrashIntegrationTests {
    static let environment = [
        "NATS_URL": TestInfrastructure.natsURL, "DATABASE_URL": TestInfrastructure.databaseURL,
        "ENGINE_DURABLE": InProcessPipeline.engineDurable, "SINK_DURABLE": InProcessPipeline.sinkDurable,
        "DOMAIN_ENGINE_HEALTH_ADDR": "127.0.0.1:18082", "DATA_SINK_HEALTH_ADDR": "127.0.0.1:18083", "LOG_LEVEL": "info",
    ].merging(InProcessPipeline.ackWaits) { $1 }
    static let logDirectory = ".runtime/test/logs"

    func start(_ service: String, replica: Int = 0) throws -> ChildProcess {
        try FileManager.default.createDirectory(atPath: Self.logDirectory, withIntermediateDirectories: true)
        var environment = Self.environment
        if replica > 0 { environment["DOMAIN_ENGINE_HEALTH_ADDR"] = "127.0.0.1:\(18082 + 10 * replica)" }
        return try ChildProcess(name: service, arguments: [service], environment: environment,
                                log: "\(Self.logDirectory)/crash-test-\(service)-\(replica).log")
    }

    func waitUntilDecided(_ nats: NATSConnection, group: String, atLeast version: Int64, timeout: Duration = .seconds(180)) async throws {
        try await Projection.waitUntil("decided", reaches: version, timeout: timeout, interval: .milliseconds(2)) {
            try await Projection.decidedVersion(nats.jetStream, group: group)
        }
    }

    func projected(_ pool: PostgresPool, groups: [String]) async throws -> Int64 {
        try await pool.query("SELECT coalesce(sum(group_version), 0)::bigint AS n FROM group_projection_offsets WHERE group_id = ANY($1)",
                             groups)[0].decode(Int64.self, "n")
    }

    func waitUntilProjected(_ pool: PostgresPool, groups: [String], atLeast count: Int64, timeout: Duration = .seconds(180)) async throws {
        try await Projection.waitUntil("events projected", reaches: count, timeout: timeout, interval: .milliseconds(20)) {
            try await projected(pool, groups: groups)
        }
    }

    /// Waits until something accepts TCP connections on 127.0.0.1:`port`.
    func waitUntilListening(port: UInt16, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if connected == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("nothing listened on port \(port) within \(timeout)")
        throw Projection.TimedOut()
    }

    @Test func everyCommandHasExactlyOneOutcomeAfterKills() async throws {
        let nats = try await TestInfrastructure.nats(name: "crash-test")
        let pool = try await TestInfrastructure.pool(maxConnections: 4)
        // Make sure the schema and streams exist before the services start.
        let setup = try await InProcessPipeline.start(engines: 0, sinks: 0)
        await setup.stop()

        let run = TestInfrastructure.unique("crash")
        let groups = (0..<20).map { "\(run)-\($0)" }
        let perGroup = 1000
        var published: [String: [String]] = [:]
        var byGroup: [[OutgoingMessage]] = []
        for group in groups {
            var writer = CommandWriter(jetStream: nats.jetStream, groupID: group)
            var commands = [writer.make(.addMember, actor: Script.owner) {
                $0.memberUserID = Script.owner.0; $0.memberUsername = Script.owner.1; $0.role = .owner
            }]
            for index in 1..<perGroup {
                let todo = "t\(index / 10)"
                switch index % 10 {
                case 1: commands.append(writer.make(.createTodo, actor: Script.owner, todo: todo) { $0.title = "todo \(index)" })
                case 5: commands.append(writer.make(.moveTodo, actor: Script.owner, todo: todo) { $0.status = .inProgress })
                case 9 where index % 20 == 9: commands.append(writer.make(.deleteTodo, actor: Script.owner, todo: todo))
                default: commands.append(writer.make(.updateTodo, actor: Script.owner, todo: todo) { $0.notes = "edit \(index)" })
                }
            }
            published[group] = commands.map(\.commandID)
            byGroup.append(try commands.map { try writer.message($0) })
        }
        var interleaved: [OutgoingMessage] = []
        for step in 0..<perGroup { for commands in byGroup { interleaved.append(commands[step]) } }

        var engine = try start("domain-engine")
        var sink = try start("data-sink")
        let results = await nats.jetStream.publishBatch(interleaved)
        #expect(results.allSatisfy { (try? $0.get()) != nil }, "all 20,000 commands accepted")
        let total = Int64(groups.count * perGroup)

        try await waitUntilProjected(pool, groups: groups, atLeast: total / 4)
        engine.signal(SIGKILL)
        #expect(await engine.wait() == 128 + SIGKILL)
        engine = try start("domain-engine")

        try await waitUntilProjected(pool, groups: groups, atLeast: total / 2)
        sink.signal(SIGKILL)
        #expect(await sink.wait() == 128 + SIGKILL)
        sink = try start("data-sink")

        try await waitUntilProjected(pool, groups: groups, atLeast: total * 3 / 4)
        engine.signal(SIGKILL)
        sink.signal(SIGKILL)
        _ = await engine.wait()
        _ = await sink.wait()
        engine = try start("domain-engine")
        sink = try start("data-sink")

        try await waitUntilProjected(pool, groups: groups, atLeast: total)
        // A graceful stop ends both cleanly (once they run: a signal before main is the default action).
        try await waitUntilListening(port: 18082)
        try await waitUntilListening(port: 18083)
        engine.signal(SIGTERM)
        sink.signal(SIGTERM)
        let engineExit = await engine.wait()
        let sinkExit = await sink.wait()
        #expect(engineExit == 0, "engine exit status \(engineExit)")
        #expect(sinkExit == 0, "sink exit status \(sinkExit)")

        for group in groups {
            let events = try await nats.jetStream.replayAll(stream: Streams.events, filter: GroupSubject.event(GroupID(group)).subject)
            let decoded = try events.flatMap { try EventMessage.decode($0.payload) }
            #expect(decoded.count == perGroup, "\(group): one outcome per command")
            #expect(Set(decoded.map(\.commandID)) == Set(published[group]!))
            #expect(decoded.map(\.groupVersion) == Array(1...Int64(perGroup)))
            let rows = try await pool.query("SELECT count(*)::int AS n FROM todo_events WHERE group_id = $1", group)
            #expect(try rows[0].decode(Int.self, "n") == perGroup)
        }

        // The tables equal a fresh replay of EVENTS.
        let verify = ProjectionTables.live.suffixed("_verify_\(run)")
        try await ProjectionRebuilder(pool: pool, jetStream: nats.jetStream, logger: .init(label: "verify")).build(into: verify)
        for group in groups {
            #expect(try await Projection.todos(pool, group: group) == Projection.todos(pool, group: group, table: verify.todos))
        }
        let offsetsDiffer = try await pool.query("""
            SELECT count(*)::int AS n FROM group_projection_offsets AS l FULL JOIN \(verify.offsets) AS r USING (group_id)
            WHERE (l.group_id = ANY($1) OR r.group_id = ANY($1))
              AND (l.group_version IS DISTINCT FROM r.group_version OR l.stream_seq IS DISTINCT FROM r.stream_seq)
            """, groups)
        #expect(try offsetsDiffer[0].decode(Int.self, "n") == 0)
        for table in verify.all { try await pool.query("DROP TABLE \(table)") }
        await nats.drain()
        await pool.shutdown()
    }

    /// One hot group, two engines appending its runs (several events per message); each is killed
    /// while the group's backlog drains, so the kills land in the middle of runs being decided and
    /// appended. Every command still has exactly one outcome, in order, and the tables match EVENTS.
    @Test func killingEnginesInTheMiddleOfMultiEventAppendsLosesAndDoublesNothing() async throws {
        let nats = try await TestInfrastructure.nats(name: "crash-test-hot")
        let pool = try await TestInfrastructure.pool(maxConnections: 4)
        let setup = try await InProcessPipeline.start(engines: 0, sinks: 0)
        await setup.stop()

        let group = TestInfrastructure.unique("crash-hot")
        let count = 12_000
        var writer = CommandWriter(jetStream: nats.jetStream, groupID: group)
        var commands = [writer.make(.addMember, actor: Script.owner) {
            $0.memberUserID = Script.owner.0; $0.memberUsername = Script.owner.1; $0.role = .owner
        }]
        for index in 1..<count {
            // Per four commands: a todo is created, updated, moved and updated again.
            let todo = "t\((index - 1) / 4)"
            switch (index - 1) % 4 {
            case 0: commands.append(writer.make(.createTodo, actor: Script.owner, todo: todo) { $0.title = "todo \(index)" })
            case 2: commands.append(writer.make(.moveTodo, actor: Script.owner, todo: todo) { $0.status = .done })
            default: commands.append(writer.make(.updateTodo, actor: Script.owner, todo: todo) { $0.notes = "edit \(index)" })
            }
        }
        let results = await nats.jetStream.publishBatch(try commands.map { try writer.message($0) })
        #expect(results.allSatisfy { (try? $0.get()) != nil })

        var engines = [try start("domain-engine", replica: 0), try start("domain-engine", replica: 1)]
        let sink = try start("data-sink")
        let total = Int64(count)
        for (threshold, victims) in [(Int64(2_500), [0]), (5_500, [1]), (8_500, [0, 1])] {
            try await waitUntilDecided(nats, group: group, atLeast: threshold)
            for victim in victims { engines[victim].signal(SIGKILL) }
            for victim in victims {
                #expect(await engines[victim].wait() == 128 + SIGKILL)
                engines[victim] = try start("domain-engine", replica: victim)
            }
        }
        try await waitUntilProjected(pool, groups: [group], atLeast: total)
        try await waitUntilListening(port: 18082)
        try await waitUntilListening(port: 18092)
        for engine in engines { engine.signal(SIGTERM) }
        sink.signal(SIGTERM)
        for engine in engines { #expect(await engine.wait() == 0) }
        #expect(await sink.wait() == 0)

        let messages = try await nats.jetStream.replayAll(stream: Streams.events, filter: GroupSubject.event(GroupID(group)).subject)
        let events = try messages.flatMap { try EventMessage.decode($0.payload) }
        #expect(events.count == count, "one outcome per command")
        #expect(events.map(\.groupVersion) == Array(1...total))
        #expect(events.map(\.commandID) == commands.map(\.commandID), "decided in stream order")
        #expect(events.allSatisfy { $0.eventType != .commandRejected }, "no command decided against a state that missed one")
        #expect(messages.count < count / 4, "\(messages.count) messages for \(count) events: runs were appended together")
        let rows = try await pool.query("SELECT count(*)::int AS n FROM todo_events WHERE group_id = $1", group)
        #expect(try rows[0].decode(Int.self, "n") == count)

        let verify = ProjectionTables.live.suffixed("_verify_\(group.replacingOccurrences(of: "-", with: "_"))")
        try await ProjectionRebuilder(pool: pool, jetStream: nats.jetStream, logger: .init(label: "verify")).build(into: verify)
        #expect(try await Projection.todos(pool, group: group) == Projection.todos(pool, group: group, table: verify.todos))
        for table in verify.all { try await pool.query("DROP TABLE \(table)") }
        await nats.drain()
        await pool.shutdown()
    }
}
