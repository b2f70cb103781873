import CommandAPI
import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdTesting
import Logging
import Migrations
import NATS
import Postgres
import Prometheus
import ServiceSupport
import Sharding
import Synchronization
import Testing

/// command-api against the real test NATS and Postgres, through its HTTP routes.
struct CommandAPIHarness {
    let nats: NATSConnection
    let pool: PostgresPool
    let api: CommandAPIApplication
    let revocationFeed: Task<Void, any Error>

    /// - Parameter environment: settings over the test defaults.
    static func start(environment: [String: String] = [:]) async throws -> CommandAPIHarness {
        let nats = try await TestInfrastructure.nats(name: "command-api-tests")
        let pool = try await TestInfrastructure.pool(maxConnections: 8)
        try await Migrator(pool: pool, migrations: Migration.bundled()).migrate()
        try await PipelineStreams.ensureAll(nats.jetStream, replicas: 1)
        let configuration = try CommandAPIConfiguration(environment: [
            "BCRYPT_COST": "4", "AUTH_RATE_PER_MINUTE": "100000",
            "NATS_URL": TestInfrastructure.natsURL, "DATABASE_URL": TestInfrastructure.databaseURL,
        ].merging(TestInfrastructure.tokenKey.environment) { $1 }.merging(environment) { $1 })
        let logger = Logger(label: "command-api-test")
        let api = await CommandAPIApplication(configuration: configuration, pool: pool,
                                              publisher: JetStreamCommandPublisher(connection: nats),
                                              announcer: NATSMembershipChangeAnnouncer(connection: nats, logger: logger),
                                              sessionAnnouncer: NATSSessionRevocationAnnouncer(connection: nats, logger: logger),
                                              notificationSignaller: NATSNotificationSignaller(connection: nats, logger: logger), checks: [],
                                              registry: PrometheusCollectorRegistry(), logger: logger)
        let feed = try await SessionRevocationFeed.start(connection: nats, pool: pool, revocations: api.revocations,
                                                         pollInterval: .seconds(configuration.revocationPollSeconds), logger: logger)
        return CommandAPIHarness(nats: nats, pool: pool, api: api, revocationFeed: Task { try await feed.run() })
    }

    func stop() async {
        revocationFeed.cancel()
        await api.passwords.shutdown()
        await nats.drain()
        await pool.shutdown()
    }

    /// Starts command-api, runs `body` with a client, and stops it again whatever happened.
    static func with(pipeline: Bool = false, environment: [String: String] = [:],
                     _ body: @Sendable (Client, NATSConnection, PostgresPool) async throws -> Void) async throws {
        let harness = try await start(environment: environment)
        let running = pipeline ? try await InProcessPipeline.start() : nil
        let result: Result<Void, any Error>
        let (nats, pool) = (harness.nats, harness.pool)
        do {
            try await Application(router: harness.api.router).test(.router) { client in
                try await body(Client(client: client), nats, pool)
            }
            result = .success(())
        } catch {
            result = .failure(error)
        }
        await running?.stop()
        await harness.stop()
        try result.get()
    }

    /// A tiny JSON client over the test transport.
    struct Client: Sendable {
        let client: any TestClientProtocol

        struct Answer {
            let status: HTTPResponse.Status
            let json: [String: Any]
            var error: String { json["error"] as? String ?? "" }
        }

        @discardableResult
        func call(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, key: String? = nil,
                  _ body: [String: Any]? = nil) async throws -> Answer {
            var headers: HTTPFields = [.contentType: "application/json"]
            if let token { headers[.authorization] = "Bearer \(token)" }
            if let key { headers[.idempotencyKey] = key }
            let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
            return try await client.execute(uri: path, method: method, headers: headers, body: data.map { ByteBuffer(bytes: $0) }) { response in
                let json = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
                return Answer(status: response.status, json: json)
            }
        }

        /// A request with exactly these header fields and body; the answer keeps the response's headers.
        func send(_ method: HTTPRequest.Method, _ path: String, headers: HTTPFields, body: String)
            async throws -> (status: HTTPResponse.Status, headers: HTTPFields, json: [String: Any]) {
            try await client.execute(uri: path, method: method, headers: headers, body: ByteBuffer(string: body)) { response in
                let json = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
                return (response.status, response.headers, json)
            }
        }

        struct Session: Sendable {
            let token: String
            let refresh: String
            let userID: String
            let username: String
        }

        func register(_ prefix: String) async throws -> Session {
            let name = TestInfrastructure.unique(prefix).lowercased().prefix(32)
            let answer = try await call(.post, "/api/v1/auth/register", ["username": String(name), "password": "correct horse"])
            #expect(answer.status == .created, "\(answer.json)")
            return Session(token: answer.json["access_token"] as? String ?? "", refresh: answer.json["refresh_token"] as? String ?? "",
                           userID: answer.json["user_id"] as? String ?? "", username: answer.json["username"] as? String ?? "")
        }

        func createGroup(_ session: Session, name: String = "Team") async throws -> String {
            let answer = try await call(.post, "/api/v1/groups", token: session.token, ["name": name])
            #expect(answer.status == .created, "\(answer.json)")
            return answer.json["id"] as? String ?? ""
        }
    }
}

@Suite("command-api against NATS and Postgres", .serialized)
struct CommandAPIIntegrationTests {
    @Test func sessionsRotateDetectReuseAndLogOut() async throws {
        try await CommandAPIHarness.with(pipeline: false) { client, nats, pool in
            let alice = try await client.register("alice")
            #expect(alice.token.split(separator: ".").count == 3)
            let upper = try await client.call(.post, "/api/v1/auth/register", ["username": alice.username.uppercased(), "password": "whatever12"])
            #expect(upper.status == .conflict)
            let short = try await client.call(.post, "/api/v1/auth/register", ["username": "ok_name", "password": "short"])
            #expect(short.status == .badRequest && short.error.hasPrefix("password"))

            let wrong = try await client.call(.post, "/api/v1/auth/login", ["username": alice.username, "password": "wrong password"])
            let unknown = try await client.call(.post, "/api/v1/auth/login", ["username": "nobody_\(alice.username.suffix(8))", "password": "wrong password"])
            #expect(wrong.status == .unauthorized && unknown.status == .unauthorized && wrong.error == unknown.error)

            // Stored only as a hash.
            let stored = try await pool.query("SELECT count(*) AS n FROM refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))", alice.refresh)
            #expect(try stored.first?.decode(Int.self, "n") == 1)
            let raw = try await pool.query("SELECT count(*) AS n FROM refresh_tokens WHERE position(convert_to($1, 'UTF8') IN token_hash) > 0", alice.refresh)
            #expect(try raw.first?.decode(Int.self, "n") == 0)

            let rotated = try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": alice.refresh])
            #expect(rotated.status == .ok)
            let second = rotated.json["refresh_token"] as? String ?? ""
            #expect(!second.isEmpty && second != alice.refresh)
            #expect(rotated.json["token"] as? String == rotated.json["access_token"] as? String)

            // The successor in use, the first token again is a thief's: the session ends.
            let next = try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": second])
            let third = next.json["refresh_token"] as? String ?? ""
            #expect(next.status == .ok)
            let reuse = try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": alice.refresh])
            #expect(reuse.status == .unauthorized && reuse.error.contains("already used"))
            // Reuse revoked the whole family, the newest token included.
            #expect(try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": third]).status == .unauthorized)

            // A lost answer: the same token again, before its successor is used, within seconds, is a
            // retry and gets a new token, once; a third time is reuse.
            let fresh = try await client.call(.post, "/api/v1/auth/login", ["username": alice.username, "password": "correct horse"])
            let first = fresh.json["refresh_token"] as? String ?? ""
            #expect(try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": first]).status == .ok)
            let retry = try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": first])
            #expect(retry.status == .ok, "\(retry.json)")
            #expect(try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": first]).status == .unauthorized)
            #expect(try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": retry.json["refresh_token"] as? String ?? ""]).status
                    == .unauthorized, "the third presentation ended the session")

            let login = try await client.call(.post, "/api/v1/auth/login", ["username": alice.username.uppercased(), "password": "correct horse"])
            #expect(login.status == .ok)
            let fourth = login.json["refresh_token"] as? String ?? ""
            #expect(try await client.call(.post, "/api/v1/auth/logout", ["refresh_token": fourth]).status == .noContent)
            #expect(try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": fourth]).status == .unauthorized)
            #expect(try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": "made-up"]).status == .unauthorized)
        }
    }

    @Test func groupFlowsFollowTheMatrixAndReachTheBusInOrder() async throws {
        try await CommandAPIHarness.with(pipeline: false) { client, nats, pool in
            let alice = try await client.register("alice")
            let bob = try await client.register("bob")
            let carol = try await client.register("carol")
            let dave = try await client.register("dave")
            let group = try await client.createGroup(alice)
            let members = "/api/v1/groups/\(group)/members"
            func add(_ by: CommandAPIHarness.Client.Session, _ who: CommandAPIHarness.Client.Session, _ role: String) async throws -> HTTPResponse.Status {
                try await client.call(.post, members, token: by.token, ["username": who.username, "role": role]).status
            }
            #expect(try await add(alice, bob, "member") == .noContent)
            #expect(try await add(alice, carol, "admin") == .noContent)
            #expect(try await add(alice, bob, "member") == .conflict)
            #expect(try await add(bob, dave, "member") == .forbidden)          // a member may not add
            #expect(try await add(carol, dave, "admin") == .forbidden)         // an admin may not add admins
            #expect(try await add(carol, dave, "member") == .noContent)        // an admin may add members
            #expect(try await client.call(.post, members, token: alice.token, ["username": "nobody_here", "role": "member"]).status == .unprocessableContent)
            #expect(try await client.call(.post, members, token: alice.token, ["username": dave.username, "role": "boss"]).status == .badRequest)
            #expect(try await client.call(.post, "/api/v1/groups/unknown-group/members", token: alice.token,
                                          ["username": dave.username, "role": "member"]).status == .notFound)

            #expect(try await client.call(.patch, "\(members)/role", token: carol.token, ["username": bob.username, "role": "admin"]).status == .forbidden)
            #expect(try await client.call(.delete, "\(members)/\(alice.username)", token: carol.token).status == .forbidden) // admin vs owner
            #expect(try await client.call(.delete, "\(members)/\(carol.username)", token: bob.token).status == .forbidden)  // member vs others
            #expect(try await client.call(.delete, "\(members)/\(bob.username)", token: carol.token).status == .noContent)  // admin removes member
            #expect(try await client.call(.delete, "\(members)/\(dave.username)", token: dave.token).status == .noContent)  // leave

            let lastOwner = try await client.call(.delete, "\(members)/\(alice.username)", token: alice.token)
            #expect(lastOwner.status == .conflict && lastOwner.error.contains("at least one owner"))
            #expect(try await client.call(.patch, "\(members)/role", token: alice.token, ["username": alice.username, "role": "member"]).status == .conflict)
            #expect(try await client.call(.patch, "\(members)/role", token: alice.token, ["username": carol.username, "role": "owner"]).status == .noContent)
            #expect(try await client.call(.delete, "\(members)/\(alice.username)", token: alice.token).status == .noContent)
            #expect(try await add(alice, dave, "member") == .forbidden)        // no longer a member

            #expect(try await client.call(.delete, "/api/v1/groups/\(group)", token: bob.token).status == .forbidden)
            #expect(try await client.call(.delete, "/api/v1/groups/\(group)", token: carol.token).status == .noContent)
            let after = try await client.call(.post, "/api/v1/command", token: carol.token,
                                              ["action": "create-todo", "group_id": group, "title": "late"])
            #expect(after.status == .notFound)

            // Every change was relayed, in commit order, as commands on the group's subject.
            let pending = try await pool.query("SELECT count(*) AS n FROM command_outbox WHERE group_id = $1 AND published_at IS NULL", group)
            #expect(try pending.first?.decode(Int.self, "n") == 0)
            let subject = GroupSubject.command(try GroupID(group)).subject
            let relayed = try await nats.jetStream.replayAll(stream: Streams.commands, filter: subject)
                .map { try MessageCoding.decoder().decode(TodoCommand.self, from: $0.payload) }
            let summary = relayed.map { "\($0.action.rawValue) \($0.memberUsername ?? "") \($0.role?.rawValue ?? "")" }
            #expect(summary == [
                "add-member \(alice.username) owner", "add-member \(bob.username) member", "add-member \(carol.username) admin",
                "add-member \(dave.username) member", "remove-member \(bob.username) ", "remove-member \(dave.username) ",
                "change-member-role \(carol.username) owner", "remove-member \(alice.username) ", "delete-group  ",
            ])
            #expect(relayed.first?.memberUserID == alice.userID)
        }
    }

    /// Two replicas, each remembering membership answers for ten minutes: a member removed through
    /// one is refused (403) by the other as soon as it hears the announcement, not when its cache
    /// expires.
    @Test func aRemovedMemberIsRefusedByEveryReplicaAtOnce() async throws {
        let settings = ["MEMBERSHIP_CACHE_MS": "600000"]
        let first = try await CommandAPIHarness.start(environment: settings)
        let second = try await CommandAPIHarness.start(environment: settings)
        let cache = try #require(second.api.membershipCache)
        let listener = MembershipChangeListener(connection: second.nats, cache: cache)
        let subscription = try await listener.subscribe()
        let listening = Task { await listener.forgetAnnounced(from: subscription) }
        let statuses = Mutex<[HTTPResponse.Status]>([])
        // One replica at a time (a router is not Sendable, so the two test clients cannot be nested).
        func viaFirst<T: Sendable>(_ body: @Sendable (CommandAPIHarness.Client) async throws -> T) async throws -> T {
            try await Application(router: first.api.router).test(.router) { try await body(CommandAPIHarness.Client(client: $0)) }
        }
        func viaSecond<T: Sendable>(_ body: @Sendable (CommandAPIHarness.Client) async throws -> T) async throws -> T {
            try await Application(router: second.api.router).test(.router) { try await body(CommandAPIHarness.Client(client: $0)) }
        }
        do {
            let (owner, member, group) = try await viaFirst { client in
                let owner = try await client.register("owner")
                let member = try await client.register("member")
                let group = try await client.createGroup(owner)
                #expect(try await client.call(.post, "/api/v1/groups/\(group)/members", token: owner.token,
                                              ["username": member.username, "role": "member"]).status == .noContent)
                return (owner, member, group)
            }
            let command: @Sendable () -> [String: Any] = { ["action": "create-todo", "group_id": group, "title": "hello"] }
            #expect(try await viaSecond { try await $0.call(.post, "/api/v1/command", token: member.token, command()).status } == .accepted)
            #expect(cache.count >= 1, "the second replica remembers the member")
            #expect(try await viaFirst {
                try await $0.call(.delete, "/api/v1/groups/\(group)/members/\(member.username)", token: owner.token).status
            } == .noContent)
            // The announcement travels over NATS: allow it a moment, far below the cache's ten minutes.
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                let status = try await viaSecond { try await $0.call(.post, "/api/v1/command", token: member.token, command()).status }
                statuses.withLock { $0.append(status) }
                if status != .accepted { break }
                try await Task.sleep(for: .milliseconds(50))
            }
        } catch {
            Issue.record(error)
        }
        await subscription.unsubscribe()
        await listening.value
        await first.stop()
        await second.stop()
        #expect(statuses.withLock { $0.last } == .forbidden, "statuses after the removal: \(statuses.withLock { $0 })")
    }

    @Test func commandLandsOnTheGroupsSubjectAndRetriesAreIdempotent() async throws {
        try await CommandAPIHarness.with(pipeline: false) { client, nats, pool in
            let alice = try await client.register("alice")
            let group = try await client.createGroup(alice)
            let subject = GroupSubject.command(try GroupID(group))
            let live = try await nats.subscribe("app.command.*.group.\(group)")
            defer { Task { await live.unsubscribe() } }

            let accepted = try await client.call(.post, "/api/v1/command", token: alice.token,
                                                 ["action": "create-todo", "group_id": group, "title": "Write tests", "status": "in_progress"])
            #expect(accepted.status == .accepted)
            #expect(accepted.json["shard"] as? Int == subject.shard)
            var received: NATSMessage?
            for await message in live {
                let command = try MessageCoding.decoder().decode(TodoCommand.self, from: message.payload)
                if command.action == .createTodo { received = message; break }
            }
            let message = try #require(received)
            #expect(message.subject == subject.subject)
            #expect(message.headers["Nats-Msg-Id"] == accepted.json["command_id"] as? String)
            let command = try MessageCoding.decoder().decode(TodoCommand.self, from: message.payload)
            #expect(command.commandID == accepted.json["command_id"] as? String)
            #expect(command.todoID == accepted.json["todo_id"] as? String)
            #expect(command.title == "Write tests" && command.status == .inProgress)
            #expect(command.actorUserID == alice.userID && command.actorName == alice.username)
            #expect(command.v == SchemaVersion.current)

            let body: [String: Any] = ["action": "create-todo", "group_id": group, "title": "Once"]
            let first = try await client.call(.post, "/api/v1/command", token: alice.token, key: "retry-key", body)
            let second = try await client.call(.post, "/api/v1/command", token: alice.token, key: "retry-key", body)
            #expect(first.status == .accepted && second.status == .accepted)
            #expect(first.json["command_id"] as? String == second.json["command_id"] as? String)
            #expect(first.json["todo_id"] as? String == second.json["todo_id"] as? String)
            let stored = try await nats.jetStream.replayAll(stream: Streams.commands, filter: subject.subject)
                .filter { $0.headers["Nats-Msg-Id"] == first.json["command_id"] as? String }
            #expect(stored.count == 1)
        }
    }

    @Test func busDownGives503AndStoresNothing() async throws {
        try await CommandAPIHarness.with(pipeline: false) { client, nats, pool in
            let alice = try await client.register("alice")
            let group = try await client.createGroup(alice)
            try await TestInfrastructure.run("\(TestInfrastructure.infraScript) stop-nats")
            let refused: CommandAPIHarness.Client.Answer
            do {
                refused = try await client.call(.post, "/api/v1/command", token: alice.token,
                                                ["action": "create-todo", "group_id": group, "title": "while down"])
            } catch {
                try await TestInfrastructure.run("\(TestInfrastructure.infraScript) start-nats")
                throw error
            }
            try await TestInfrastructure.run("\(TestInfrastructure.infraScript) start-nats")
            #expect(refused.status == .serviceUnavailable && refused.error.contains("could not be stored"))

            // Once NATS is back (the connection reconnects), nothing of the refused command shows up.
            var stored: [StoredMessage] = []
            for _ in 0..<100 where !nats.isConnected { try await Task.sleep(for: .milliseconds(100)) }
            try await Task.sleep(for: .milliseconds(500))
            stored = try await nats.jetStream.replayAll(stream: Streams.commands, filter: GroupSubject.command(try GroupID(group)).subject)
            #expect(!stored.isEmpty) // the creator's add-member
            #expect(!stored.contains { String(decoding: $0.payload, as: UTF8.self).contains("while down") })
            let after = try await client.call(.post, "/api/v1/command", token: alice.token,
                                              ["action": "create-todo", "group_id": group, "title": "after"])
            #expect(after.status == .accepted)
        }
    }

    @Test func commandStatusFollowsTheEngineOutcome() async throws {
        try await CommandAPIHarness.with(pipeline: true) { client, nats, pool in
            let alice = try await client.register("alice")
            let bob = try await client.register("bob")
            let group = try await client.createGroup(alice)
            #expect(try await client.call(.post, "/api/v1/groups/\(group)/members", token: alice.token,
                                          ["username": bob.username, "role": "member"]).status == .noContent)
            let created = try await client.call(.post, "/api/v1/command", token: alice.token,
                                                ["action": "create-todo", "group_id": group, "title": "Alice's"])
            let todo = created.json["todo_id"] as? String ?? ""
            let deleted = try await client.call(.post, "/api/v1/command", token: bob.token,
                                                ["action": "delete-todo", "group_id": group, "todo_id": todo])
            #expect(deleted.status == .accepted) // membership is enough here; the engine knows whose todo it is

            func settled(_ id: String, _ session: CommandAPIHarness.Client.Session) async throws -> CommandAPIHarness.Client.Answer {
                for _ in 0..<100 {
                    let answer = try await client.call(.get, "/api/v1/commands/\(id)", token: session.token)
                    if answer.json["status"] as? String != "pending" { return answer }
                    try await Task.sleep(for: .milliseconds(100))
                }
                return try await client.call(.get, "/api/v1/commands/\(id)", token: session.token)
            }
            let applied = try await settled(created.json["command_id"] as? String ?? "", alice)
            #expect(applied.json["status"] as? String == "applied")
            #expect(applied.json["group_version"] as? Int == 3) // member.added ×2, then todo.created
            let rejected = try await settled(deleted.json["command_id"] as? String ?? "", bob)
            #expect(rejected.json["status"] as? String == "rejected")
            #expect(rejected.json["code"] as? String == "forbidden")
            #expect((rejected.json["reason"] as? String)?.isEmpty == false)
            // Someone else's command is not revealed.
            #expect(try await client.call(.get, "/api/v1/commands/\(created.json["command_id"] as? String ?? "")", token: bob.token).status == .notFound)
            #expect(try await client.call(.get, "/api/v1/commands/\(UUID().uuidString)", token: bob.token).json["status"] as? String == "pending")
            #expect(try await client.call(.get, "/api/v1/commands/x").status == .unauthorized)
        }
    }
}
