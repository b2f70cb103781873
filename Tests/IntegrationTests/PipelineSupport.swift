import Contracts
import DataSink
import DomainEngine
import Foundation
import Logging
import Migrations
import NATS
import Postgres
import ServiceSupport
import Sharding
import Testing

/// Engine and sink running inside the test process (as libraries), against the test servers.
struct InProcessPipeline {
    let nats: NATSConnection
    let pool: PostgresPool
    let replicaConnections: [NATSConnection]
    let tasks: [Task<Void, Error>]

    static let engineDurable = "it-engine"
    static let sinkDurable = "it-sink"
    /// Short ack waits, so work held by a killed process comes back quickly in tests. Every
    /// replica of a consumer must agree (each reconciles the consumer's configuration).
    static let ackWaits = ["ENGINE_ACK_WAIT_SECONDS": "3", "SINK_ACK_WAIT_SECONDS": "5"]

    /// Each replica gets its own NATS connection, as separate processes would.
    static func start(engines: Int = 1, sinks: Int = 1) async throws -> InProcessPipeline {
        let nats = try await TestInfrastructure.nats(name: "pipeline-tests")
        let pool = try await TestInfrastructure.pool(maxConnections: 8)
        try await Migrator(pool: pool, migrations: Migration.bundled()).migrate()
        try await PipelineStreams.ensureAll(nats.jetStream, replicas: 1)
        let environment = ["NATS_URL": TestInfrastructure.natsURL, "DATABASE_URL": TestInfrastructure.databaseURL,
                           "ENGINE_DURABLE": engineDurable, "SINK_DURABLE": sinkDurable].merging(ackWaits) { $1 }
        var tasks: [Task<Void, Error>] = []
        var connections: [NATSConnection] = []
        for index in 0..<engines {
            let connection = try await TestInfrastructure.nats(name: "engine-\(index)")
            connections.append(connection)
            let engine = DomainEngineService(configuration: try DomainEngineConfiguration(environment: environment),
                                             connection: connection, logger: Logger(label: "engine-\(index)"))
            tasks.append(Task { try await engine.run() })
        }
        for index in 0..<sinks {
            let connection = try await TestInfrastructure.nats(name: "sink-\(index)")
            connections.append(connection)
            let sink = DataSinkService(configuration: try DataSinkConfiguration(environment: environment), connection: connection,
                                       pool: pool, logger: Logger(label: "sink-\(index)"))
            tasks.append(Task { try await sink.run() })
        }
        return InProcessPipeline(nats: nats, pool: pool, replicaConnections: connections, tasks: tasks)
    }

    /// An engine replica started later, on a connection of its own.
    struct Replica {
        let task: Task<Void, Error>
        let connection: NATSConnection

        func stop() async {
            task.cancel()
            _ = await task.result
            await connection.drain()
        }
    }

    func startEngine(_ name: String = "engine-late", settings: [String: String] = [:]) async throws -> Replica {
        let connection = try await TestInfrastructure.nats(name: name)
        let environment = ["NATS_URL": TestInfrastructure.natsURL, "DATABASE_URL": TestInfrastructure.databaseURL,
                           "ENGINE_DURABLE": Self.engineDurable].merging(Self.ackWaits) { $1 }.merging(settings) { $1 }
        let engine = DomainEngineService(configuration: try DomainEngineConfiguration(environment: environment),
                                         connection: connection, logger: Logger(label: name))
        return Replica(task: Task { try await engine.run() }, connection: connection)
    }

    func stop() async {
        for task in tasks { task.cancel() }
        for task in tasks { _ = await task.result }
        for connection in replicaConnections { await connection.drain() }
        await nats.drain()
        await pool.shutdown()
    }
}

/// Commands as command-api would publish them.
struct CommandWriter {
    let jetStream: JetStream
    let groupID: String
    var counter = 0
    let prefix = TestInfrastructure.unique("cmd")

    init(jetStream: JetStream, groupID: String) {
        self.jetStream = jetStream
        self.groupID = groupID
    }

    mutating func make(_ action: CommandAction, actor: (String, String), todo: String? = nil,
                       configure: (inout TodoCommand) -> Void = { _ in }) -> TodoCommand {
        counter += 1
        var command = TodoCommand(commandID: "\(prefix)-\(counter)", action: action, groupID: groupID, todoID: todo,
                                  actorUserID: actor.0, actorName: actor.1, issuedAt: Date())
        configure(&command)
        return command
    }

    func message(_ command: TodoCommand, msgID: String? = nil) throws -> OutgoingMessage {
        OutgoingMessage(subject: try GroupSubject.command(GroupID(groupID)).subject,
                        payload: try MessageCoding.encoder().encode(command), msgID: msgID ?? command.commandID)
    }

    @discardableResult
    func publish(_ command: TodoCommand, msgID: String? = nil) async throws -> PublishAck {
        try await jetStream.publish(try message(command, msgID: msgID))
    }

    @discardableResult
    mutating func send(_ action: CommandAction, actor: (String, String), todo: String? = nil,
                       configure: (inout TodoCommand) -> Void = { _ in }) async throws -> TodoCommand {
        let command = make(action, actor: actor, todo: todo, configure: configure)
        try await publish(command)
        return command
    }

    mutating func addMember(_ member: (String, String), role: GroupRole, by actor: (String, String)) async throws {
        try await send(.addMember, actor: actor) {
            $0.memberUserID = member.0
            $0.memberUsername = member.1
            $0.role = role
        }
    }
}

enum Projection {
    /// Waits until the group's projection offset reaches `version`.
    static func waitForVersion(_ pool: PostgresPool, group: String, atLeast version: Int64,
                               timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let rows = try await pool.query("SELECT group_version FROM group_projection_offsets WHERE group_id = $1", group)
            if let current = try rows.first?.decode(Int64.self, "group_version"), current >= version { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        let rows = try await pool.query("SELECT group_version FROM group_projection_offsets WHERE group_id = $1", group)
        Issue.record("group \(group) did not reach version \(version) within \(timeout) (at \(String(describing: try rows.first?.decode(Int64.self, "group_version"))))")
        throw TimedOut()
    }

    struct TimedOut: Error {}

    /// The group's last decided version on EVENTS (0: none), the last event of its last message.
    static func decidedVersion(_ jetStream: JetStream, group: String) async throws -> Int64 {
        guard let last = try await jetStream.lastMessage(stream: Streams.events, subject: GroupSubject.event(GroupID(group)).subject)
        else { return 0 }
        return try EventMessage.decode(last.payload).last?.groupVersion ?? 0
    }

    /// Polls `current` every `interval` until it reaches `target`; records what it reached and
    /// throws `TimedOut` past `timeout`.
    static func waitUntil(_ what: String, reaches target: Int64, timeout: Duration, interval: Duration,
                          current: () async throws -> Int64) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await current() < target {
            guard ContinuousClock.now < deadline else {
                Issue.record("only \(try await current()) of \(target) \(what) within \(timeout)")
                throw TimedOut()
            }
            try await Task.sleep(for: interval)
        }
    }

    /// The group's todos as comparable text rows (timestamps left out).
    static func todos(_ pool: PostgresPool, group: String, table: String = "todos") async throws -> [String] {
        try await pool.query("""
            SELECT todo_id, title, notes, status, position, due_date::text AS due, assignee, labels::text AS labels,
                   created_by, version, group_version, deleted_at IS NOT NULL AS deleted
            FROM \(table) WHERE group_id = $1 ORDER BY todo_id
            """, group).map { row in
            try row.columns.map { column in try row.decode(String?.self, column) ?? "∅" }.joined(separator: "|")
        }
    }

    static func events(_ pool: PostgresPool, group: String) async throws -> [(version: Int64, type: String, code: String?, command: String)] {
        try await pool.query("""
            SELECT group_version, event_type, payload->>'code' AS code, command_id FROM todo_events
            WHERE group_id = $1 ORDER BY group_version
            """, group).map {
            (try $0.decode(Int64.self, "group_version"), try $0.decode(String.self, "event_type"),
             try $0.decode(String?.self, "code"), try $0.decode(String.self, "command_id"))
        }
    }
}

/// A deterministic mix of every action, rejections included, for one group: the same script on
/// two groups must give the same tables whatever the number of replicas.
enum Script {
    static let owner = ("u-owner", "olivia")
    static let admin = ("u-admin", "adam")
    static let member = ("u-member", "mia")

    static func commands(_ writer: inout CommandWriter, todos: Int = 8) -> [TodoCommand] {
        var commands: [TodoCommand] = []
        func add(_ action: CommandAction, _ actor: (String, String), _ todo: String? = nil, _ configure: (inout TodoCommand) -> Void = { _ in }) {
            commands.append(writer.make(action, actor: actor, todo: todo, configure: configure))
        }
        for (user, role) in [(owner, GroupRole.owner), (admin, .admin), (member, .member)] {
            add(.addMember, owner) { $0.memberUserID = user.0; $0.memberUsername = user.1; $0.role = role }
        }
        let users = [owner, admin, member]
        for index in 0..<todos {
            add(.createTodo, users[index % 3], "t\(index)") { $0.title = "todo \(index)"; $0.labels = ["l\(index % 2)"] }
        }
        for index in 0..<todos {
            // A member editing someone else's todo is forbidden; the others succeed.
            add(.updateTodo, users[(index + 1) % 3], "t\(index)") { $0.title = "edited \(index)"; $0.notes = "by \(index)" }
            add(.moveTodo, owner, "t\(index)") { $0.status = index % 2 == 0 ? .done : .inProgress }
        }
        add(.updateTodo, owner, "t0") { $0.title = "stale"; $0.expectedVersion = 1 }            // version_conflict
        add(.deleteTodo, users[1], "t1")
        add(.deleteTodo, member, "t0")                                                          // forbidden
        add(.changeMemberRole, owner) { $0.memberUserID = member.0; $0.memberUsername = member.1; $0.role = .admin }
        add(.deleteTodo, member, "t0")                                                          // allowed now
        add(.removeMember, owner) { $0.memberUserID = admin.0; $0.memberUsername = admin.1 }
        add(.createTodo, admin, "late") { $0.title = "after removal" }                         // not_member
        add(.createTodo, owner, "t2") { $0.title = "duplicate id" }                            // todo_exists
        return commands
    }
}

/// Polling for something that happens elsewhere (another replica, another process).
enum Poll {
    /// Polls `check` every 20 ms: the seconds it took to hold, or nil (and an issue named `what`,
    /// when given) after `timeout`.
    static func seconds(_ what: String? = nil, timeout: Duration = .seconds(10),
                        until check: () async throws -> Bool) async throws -> Double? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if try await check() {
                let elapsed = ContinuousClock.now - start
                return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        if let what { Issue.record("not within \(timeout): \(what)") }
        return nil
    }
}
