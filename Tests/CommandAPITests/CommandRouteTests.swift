import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdTesting
import Logging
import NATS
import Synchronization
import Testing
@testable import CommandAPI

/// Records what would have been published; fails on demand.
final class RecordingPublisher: CommandPublishing {
    struct Published: Sendable {
        let subject: String
        let payload: Data
        let messageID: String
    }

    let published = Mutex<[Published]>([])
    let failing = Atomic<Bool>(false)

    func publish(subject: String, payload: Data, messageID: String) async throws -> PublishAck {
        if failing.load(ordering: .relaxed) { throw NATSError(kind: .connectionClosed, operation: "publish", message: "test: bus down") }
        return published.withLock { list in
            let duplicate = list.contains { $0.messageID == messageID }
            if !duplicate { list.append(Published(subject: subject, payload: payload, messageID: messageID)) }
            return PublishAck(stream: "COMMANDS", sequence: UInt64(list.count), duplicate: duplicate)
        }
    }
}

/// Memberships and idempotency keys in memory.
final class InMemoryIntakeStore: CommandIntakeStore {
    let roles = Mutex<[String: [UUID: GroupRole]]>([:])
    let usernames = Mutex<[String: Set<String>]>([:])
    let keys = Mutex<[String: IdempotentResult]>([:])
    let todoCounts = Mutex<[String: Int]>([:])

    func add(_ user: AuthenticatedUser, to group: String, as role: GroupRole) {
        roles.withLock { $0[group, default: [:]][user.userID] = role }
        usernames.withLock { _ = $0[group, default: []].insert(user.username) }
    }

    func membership(of user: UUID, in group: String) async throws -> MembershipCheck {
        roles.withLock { roles in
            guard let members = roles[group] else { return .unknownGroup }
            return members[user].map(MembershipCheck.member) ?? .notMember
        }
    }

    func isMember(username: String, of group: String) async throws -> Bool {
        usernames.withLock { $0[group]?.contains(username) ?? false }
    }

    func liveTodoCount(in group: String, upTo limit: Int) async throws -> Int {
        todoCounts.withLock { min($0[group, default: 0], limit) }
    }

    func idempotentResult(user: UUID, key: String) async throws -> IdempotentResult? {
        keys.withLock { $0["\(user)/\(key)"] }
    }

    func storeIdempotentResult(user: UUID, key: String, result: IdempotentResult) async throws {
        keys.withLock { $0["\(user)/\(key)"] = $0["\(user)/\(key)"] ?? result }
    }

    func outcome(commandID: String) async throws -> CommandOutcome? { nil }
    func timezone(of user: UUID) async throws -> String { "Europe/Berlin" }
}

@Suite("POST /api/v1/command over HTTP (in-memory store and publisher)")
struct CommandRouteTests {
    let alice = AuthenticatedUser(userID: UUID(), username: "alice", sessionID: UUID())
    let bob = AuthenticatedUser(userID: UUID(), username: "bob", sessionID: UUID())
    let group = "team-1"

    struct Fixture {
        let router: Router<APIRequestContext>
        let publisher: RecordingPublisher
        let store: InMemoryIntakeStore
        let tokens: AccessTokens
        let issuer: AccessTokenIssuer
    }

    func fixture(environment: [String: String] = [:]) async throws -> Fixture {
        let configuration = try CommandAPIConfiguration(
            environment: TokenSigningKey.generate(kid: "k1").environment.merging(environment) { $1 })
        let tokens = await AccessTokens(verificationKeys: configuration.verificationKeys)
        let issuer = await AccessTokenIssuer(signingKey: configuration.signingKey)
        let publisher = RecordingPublisher()
        let store = InMemoryIntakeStore()
        store.add(alice, to: group, as: .member)
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: CORSMiddleware(uiOrigin: configuration.uiOrigin, development: true))
        router.add(middleware: ErrorMiddleware())
        CommandAPIRoutes.addCommandRoutes(
            to: router, intake: CommandIntake(store: store, publisher: publisher, logger: Logger(label: "test")),
            tokens: tokens, limits: CommandAPILimits(configuration: configuration))
        return Fixture(router: router, publisher: publisher, store: store, tokens: tokens, issuer: issuer)
    }

    func headers(_ fixture: Fixture, _ user: AuthenticatedUser, key: String? = nil) async throws -> HTTPFields {
        var headers: HTTPFields = [.authorization: "Bearer \(try await fixture.issuer.issue(for: user))", .contentType: "application/json"]
        if let key { headers[.idempotencyKey] = key }
        return headers
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any]) ?? [:]
    }

    @Test func acceptedCommandIsPublishedOnTheGroupsSubject() async throws {
        let fixture = try await fixture()
        let headers = try await headers(fixture, alice)
        let publisher = fixture.publisher
        try await Application(router: fixture.router).test(.router) { client in
            let body = #"{"action":"create-todo","group_id":"team-1","title":"Plan","labels":["x"]}"#
            try await client.execute(uri: "/api/v1/command", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .accepted)
                let answer = Self.json(response.body)
                #expect(answer["status"] as? String == "accepted")
                let published = try #require(publisher.published.withLock { $0.first })
                #expect(published.subject == "app.command.\(answer["shard"] as? Int ?? -1).group.team-1")
                #expect(published.messageID == answer["command_id"] as? String)
                let command = try MessageCoding.decoder().decode(TodoCommand.self, from: published.payload)
                #expect(command.commandID == published.messageID)
                #expect(command.todoID == answer["todo_id"] as? String)
                #expect(command.actorUserID == alice.userID.uuidString.lowercased())
                #expect(command.actorName == "alice")
                #expect(command.title == "Plan")
                #expect(command.labels == ["x"])
            }
        }
    }

    @Test func refusalsHaveTheirStatusAndStoreNothing() async throws {
        let fixture = try await fixture()
        let alice = try await headers(fixture, alice)
        let bob = try await headers(fixture, bob)
        let cases: [(HTTPFields, String, HTTPResponse.Status, String)] = [
            ([:], #"{"action":"create-todo","group_id":"team-1","title":"x"}"#, .unauthorized, "access token"),
            ([.authorization: "Bearer not-a-token"], #"{"action":"create-todo","group_id":"team-1","title":"x"}"#, .unauthorized, "access token"),
            (alice, #"{"action":"create-todo","group_id":"team-1","title":"x","when":1}"#, .badRequest, "when"),
            (alice, #"{"action":"create-todo","group_id":"team-1","title":"x","assignee":"carol"}"#, .unprocessableContent, "assignee"),
            (alice, #"{"action":"create-todo","group_id":"nope","title":"x"}"#, .notFound, "does not exist"),
            (bob, #"{"action":"create-todo","group_id":"team-1","title":"x"}"#, .forbidden, "not a member"),
            (alice, #"{"action":"create-todo","group_id":"team-1","title":"x","title":"y"}"#, .badRequest, "appears twice"),
            (alice, #"{"action":"create-todo","group_id":"team-1","title":"x",}"#, .badRequest, "not valid JSON"),
            (alice, #"["create-todo"]"#, .badRequest, "must be a JSON object"),
        ]
        try await Application(router: fixture.router).test(.router) { client in
            for (headers, body, status, message) in cases {
                try await client.execute(uri: "/api/v1/command", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == status, "\(body)")
                    #expect((Self.json(response.body)["error"] as? String)?.contains(message) == true, "\(body)")
                }
            }
        }
        #expect(fixture.publisher.published.withLock { $0.isEmpty })
    }

    @Test func busDownAnswers503() async throws {
        let fixture = try await fixture()
        fixture.publisher.failing.store(true, ordering: .relaxed)
        let headers = try await headers(fixture, alice)
        try await Application(router: fixture.router).test(.router) { client in
            try await client.execute(uri: "/api/v1/command", method: .post, headers: headers,
                                     body: ByteBuffer(string: #"{"action":"create-todo","group_id":"team-1","title":"x"}"#)) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] != nil)
            }
        }
        #expect(fixture.store.keys.withLock { $0.isEmpty })
    }

    @Test func idempotencyKeyReturnsTheSameCommand() async throws {
        let fixture = try await fixture()
        let headers = try await headers(fixture, alice, key: "retry-1")
        let body = #"{"action":"create-todo","group_id":"team-1","title":"once"}"#
        try await Application(router: fixture.router).test(.router) { client in
            var ids: [String] = []
            for _ in 0..<3 {
                try await client.execute(uri: "/api/v1/command", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .accepted)
                    ids.append(Self.json(response.body)["command_id"] as? String ?? "")
                }
            }
            #expect(Set(ids).count == 1)
            try await client.execute(uri: "/api/v1/command", method: .post, headers: headers,
                                     body: ByteBuffer(string: #"{"action":"create-todo","group_id":"team-1","title":"other"}"#)) { response in
                #expect(response.status == .conflict)
            }
        }
        #expect(fixture.publisher.published.withLock { $0.count } == 1)
    }

    @Test func oversizedBodyIs413() async throws {
        let fixture = try await fixture()
        let headers = try await headers(fixture, alice)
        let notes = String(repeating: "n", count: 70_000)
        try await Application(router: fixture.router).test(.router) { client in
            try await client.execute(uri: "/api/v1/command", method: .post, headers: headers,
                                     body: ByteBuffer(string: #"{"action":"create-todo","group_id":"team-1","title":"x","notes":"\#(notes)"}"#)) { response in
                #expect(response.status == .contentTooLarge)
                #expect(Self.json(response.body)["error"] != nil)
            }
        }
    }

    @Test func perUserRateLimitAnswers429WithRetryAfter() async throws {
        let fixture = try await fixture(environment: ["COMMAND_RATE_PER_SECOND": "1"])
        let headers = try await headers(fixture, alice)
        let body = #"{"action":"create-todo","group_id":"team-1","title":"x"}"#
        try await Application(router: fixture.router).test(.router) { client in
            var statuses: [HTTPResponse.Status] = []
            var retryAfter: String?
            for _ in 0..<4 {
                try await client.execute(uri: "/api/v1/command", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                    statuses.append(response.status)
                    if response.status == .tooManyRequests { retryAfter = response.headers[.retryAfter] }
                }
            }
            #expect(statuses.prefix(2).allSatisfy { $0 == .accepted })
            #expect(statuses.last == .tooManyRequests)
            #expect(retryAfter == "1")
        }
    }

    @Test func corsAnswersOnlyTheUIOrigin() async throws {
        let fixture = try await fixture()
        try await Application(router: fixture.router).test(.router) { client in
            let preflight: HTTPFields = [.origin: "http://127.0.0.1:8081", .accessControlRequestMethod: "POST"]
            try await client.execute(uri: "/api/v1/command", method: .options, headers: preflight) { response in
                #expect(response.status == .noContent)
                #expect(response.headers[.accessControlAllowOrigin] == "http://127.0.0.1:8081")
                #expect(response.headers[.accessControlAllowHeaders]?.contains("Idempotency-Key") == true)
            }
            let evil: HTTPFields = [.origin: "https://evil.example", .accessControlRequestMethod: "POST"]
            try await client.execute(uri: "/api/v1/command", method: .options, headers: evil) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.accessControlAllowOrigin] == nil)
            }
            try await client.execute(uri: "/api/v1/command", method: .post, headers: [.origin: "http://localhost:8081"]) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.accessControlAllowOrigin] == "http://localhost:8081")
            }
        }
    }
}
