import Contracts
import Foundation
import HTTPAPI
import Migrations
import NATS
import Postgres
import ServiceSupport
import Sharding
import Testing

/// Each service speaks on the bus and in Postgres as a user of its own, with only what it needs
/// (DESIGN §11; infrastructure/nats/permissions.conf, migration 0007, scripts/infra.sh). An observer connected as
/// `admin` listens on every application subject: what a service may not publish never arrives.
@Suite("Least privilege: NATS users and Postgres roles", .serialized)
struct LeastPrivilegeIntegrationTests {
    static func connect(as user: String) async throws -> NATSConnection {
        guard TestInfrastructure.natsPassword(user) != nil else {
            Issue.record("no NATS password for \(user) in \(TestInfrastructure.secrets); \(TestInfrastructure.hint)")
            throw CancellationError()
        }
        var options = NATSConnection.Options(url: TestInfrastructure.natsURL(as: user), name: "as-\(user)")
        options.publishAckTimeout = .seconds(1)
        options.apiTimeout = .seconds(1)
        return try await NATSConnection.connect(options)
    }

    /// Publishes `subject` as `connection` and reports whether the observer saw it within a second.
    static func arrives(_ subject: String, from connection: NATSConnection, observer: NATSSubscription) async throws -> Bool {
        let marker = UUID().uuidString
        try await connection.publish(subject, Data(marker.utf8))
        try? await connection.ping()
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await message in observer where String(decoding: message.payload, as: UTF8.self) == marker { return true }
                return false
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(1))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    @Test func commandAPICannotForgeEventsAndTheStreamerCannotPublish() async throws {
        let admin = try await TestInfrastructure.nats(name: "observer")
        try await PipelineStreams.ensureAll(admin.jetStream, replicas: 1)
        // Core subjects outside the streams, so the probes leave nothing behind in them.
        let observer = try await admin.subscribe("perm.>")
        let events = try await admin.subscribe("app.event.>")
        let sessions = try await admin.subscribe(SessionRevocation.subject)
        try await admin.ping()
        let commandAPI = try await Self.connect(as: "command-api")
        let streamer = try await Self.connect(as: "streamer")
        let engine = try await Self.connect(as: "domain-engine")

        // command-api: announcements yes; events, on core NATS or through JetStream, no.
        #expect(try await Self.arrives(SessionRevocation.subject, from: commandAPI, observer: sessions), "control: an allowed subject arrives")
        #expect(try await !Self.arrives("app.event.000.grp-forged", from: commandAPI, observer: events))
        await #expect(throws: (any Error).self, "no acknowledgement for a forged event") {
            _ = try await commandAPI.jetStream.publish("app.event.000.grp-forged", Data("{}".utf8))
        }
        #expect(try await !Self.arrives("perm.anything", from: commandAPI, observer: observer))

        // The streamer publishes nothing of the application's but its presence announcements (app.presence.>).
        for subject in ["app.event.000.grp-forged", SessionRevocation.subject, "perm.anything"] {
            let target = subject.hasPrefix("app.event") ? events : subject.hasPrefix("perm") ? observer : sessions
            #expect(try await !Self.arrives(subject, from: streamer, observer: target), "\(subject)")
        }
        await #expect(throws: (any Error).self, "nor creates streams") {
            _ = try await streamer.jetStream.ensureStream(StreamConfig(name: "PERMTEST", subjects: ["perm.stream.>"]))
        }
        // Nor delete the sink's durable consumer.
        if (try? await admin.jetStream.consumerInfo(stream: Streams.events, durable: "data-sink")) == nil {
            let consumer = try await admin.jetStream.pullConsumer(stream: Streams.events, config: ConsumerConfig(durable: "data-sink"))
            await consumer.close()
        }
        await #expect(throws: (any Error).self, "nor delete another service's consumer") {
            try await streamer.jetStream.deleteConsumer(stream: Streams.events, durable: "data-sink")
        }
        _ = try await admin.jetStream.consumerInfo(stream: Streams.events, durable: "data-sink") // still there
        // … but it reads EVENTS (a replay is an ordered consumer) and hears revocations.
        let replay = streamer.jetStream.replay(stream: Streams.events, filter: "app.event.000.grp-none", from: 1)
        for try await _ in replay { break }
        let heard = try await streamer.subscribe(SessionRevocation.subject)
        try await streamer.ping()
        #expect(try await Self.arrives(SessionRevocation.subject, from: admin, observer: heard))

        // The engine appends events, never commands or announcements.
        #expect(try await !Self.arrives(SessionRevocation.subject, from: engine, observer: sessions))

        // The scheduler: commands and notification signals, never events; its own consumer only.
        let scheduler = try await Self.connect(as: "scheduler")
        #expect(try await !Self.arrives("app.event.000.grp-forged", from: scheduler, observer: events))
        #expect(try await !Self.arrives(SessionRevocation.subject, from: scheduler, observer: sessions))
        let notify = try await admin.subscribe(UserSubject.wildcard)
        try await admin.ping()
        #expect(try await Self.arrives(try UserSubject(userID: "u-perm").subject, from: scheduler, observer: notify), "control: a signal arrives")
        await #expect(throws: (any Error).self, "the scheduler cannot touch the sink's consumer") {
            try await scheduler.jetStream.deleteConsumer(stream: Streams.events, durable: "data-sink")
        }
        if (try? await admin.jetStream.consumerInfo(stream: Streams.events, durable: "scheduler")) == nil {
            let consumer = try await admin.jetStream.pullConsumer(stream: Streams.events, config: ConsumerConfig(durable: "scheduler"))
            await consumer.close()
        }
        let sink = try await Self.connect(as: "data-sink")
        await #expect(throws: (any Error).self, "the sink cannot read from the scheduler's consumer") {
            let consumer = try await sink.jetStream.pullConsumer(stream: Streams.events, config: ConsumerConfig(durable: "scheduler"))
            _ = try await consumer.fetch(batch: 1, expires: .milliseconds(200))
        }
        for other in [streamer, engine, sink] {
            await #expect(throws: (any Error).self, "nor may the others touch the scheduler's") {
                try await other.jetStream.deleteConsumer(stream: Streams.events, durable: "scheduler")
            }
        }
        _ = try await admin.jetStream.consumerInfo(stream: Streams.events, durable: "scheduler") // still there
        for connection in [commandAPI, streamer, engine, scheduler, sink, admin] { await connection.drain() }
    }

    static func pool(as user: String) throws -> PostgresPool {
        let password = try String(contentsOfFile: "\(TestInfrastructure.secrets)/pg-\(user)", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let url = TestInfrastructure.databaseURL.replacingOccurrences(of: "postgres://app:password@", with: "postgres://\(user):\(password)@")
        return PostgresPool(url: url, maxConnections: 1)
    }

    /// Whether `sql` is refused for want of a privilege (SQLSTATE 42501).
    static func denied(_ pool: PostgresPool, _ sql: String) async -> Bool {
        do {
            _ = try await pool.query(sql)
            return false
        } catch let error as PostgresError {
            return "\(error)".contains("42501")
        } catch {
            return false
        }
    }

    @Test func eachServiceHasOnlyTheGrantsItNeeds() async throws {
        let owner = try await TestInfrastructure.pool(maxConnections: 2)
        try await Migrator(pool: owner, migrations: Migration.bundled()).migrate()
        let streamer = try Self.pool(as: "streamer")
        let sink = try Self.pool(as: "data_sink")
        let commandAPI = try Self.pool(as: "command_api")

        _ = try await streamer.query("SELECT user_id, username FROM users LIMIT 1")
        _ = try await streamer.query("SELECT session_id FROM revoked_sessions LIMIT 1")
        #expect(await Self.denied(streamer, "SELECT password_hash FROM users LIMIT 1"), "the streamer never reads a password hash")
        #expect(await Self.denied(streamer, "DELETE FROM todos WHERE false"), "the streamer reads only")
        #expect(await Self.denied(streamer, "INSERT INTO revoked_sessions (session_id, user_id, expires_at) VALUES (gen_random_uuid(), gen_random_uuid(), now())"))
        #expect(await Self.denied(streamer, "SELECT token_hash FROM refresh_tokens LIMIT 1"))

        _ = try await sink.query("SELECT group_id FROM group_projection_offsets LIMIT 1")
        #expect(await Self.denied(sink, "SELECT username FROM users LIMIT 1"), "the sink knows no accounts")
        #expect(await Self.denied(sink, "UPDATE group_members SET role = role WHERE false"))

        _ = try await commandAPI.query("SELECT count(*) AS n FROM todos WHERE false")
        #expect(await Self.denied(commandAPI, "UPDATE todos SET title = title WHERE false"), "command-api does not write the projection")
        #expect(await Self.denied(commandAPI, "DROP TABLE idempotency_keys"), "nor change the schema")
        // The scheduler: its own tables and notifications (written, never changed), accounts' names only.
        let scheduler = try Self.pool(as: "scheduler")
        _ = try await scheduler.query("SELECT count(*) AS n FROM scheduler_reminders WHERE false")
        _ = try await scheduler.query("SELECT user_id, username FROM users LIMIT 1")
        #expect(await Self.denied(scheduler, "SELECT password_hash FROM users LIMIT 1"))
        #expect(await Self.denied(scheduler, "UPDATE notifications SET read_at = now() WHERE false"), "reading is the user's")
        #expect(await Self.denied(scheduler, "UPDATE todos SET title = title WHERE false"))
        // Notifications: the streamer reads them; command-api marks them read and nothing else.
        _ = try await streamer.query("SELECT count(*) AS n FROM notifications WHERE false")
        #expect(await Self.denied(streamer, "UPDATE notifications SET read_at = now() WHERE false"))
        _ = try await commandAPI.query("UPDATE notifications SET read_at = now() WHERE user_id = 'nobody' AND notification_id = 0")
        #expect(await Self.denied(commandAPI, "UPDATE notifications SET title = title WHERE false"))
        #expect(await Self.denied(commandAPI, "SELECT title FROM notifications LIMIT 1"))
        #expect(await Self.denied(commandAPI, "DELETE FROM notifications WHERE false"))
        for pool in [streamer, sink, commandAPI, scheduler, owner] { await pool.shutdown() }
    }
}
