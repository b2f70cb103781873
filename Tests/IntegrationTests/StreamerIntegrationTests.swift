import CommandAPI
import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdTesting
import Logging
import NATS
import Postgres
import Prometheus
import Sharding
import Streamer
import Testing

/// The streamer (live, on a real socket) with command-api (in process) over the real servers.
/// Timeouts below are liveness bounds, not performance claims (`make bench` measures latency).
@Suite("streamer: read API and SSE", .serialized)
struct StreamerIntegrationTests {
    typealias Client = CommandAPIHarness.Client
    typealias Session = CommandAPIHarness.Client.Session

    /// Runs `body` with command-api's client, the streamer's client and port, and optionally the pipeline.
    static func with(pipeline: Bool = true, environment: [String: String] = [:],
                     _ body: @Sendable (Client, any TestClientProtocol, Int, NATSConnection) async throws -> Void) async throws {
        try await withStreamer(pipeline: pipeline, environment: environment) { api, client, port, nats, _ in
            try await body(api, client, port, nats)
        }
    }

    /// Like `with`, also handing over the streamer's SSE route.
    static func withStreamer(pipeline: Bool = true, environment: [String: String] = [:],
                             _ body: @Sendable (Client, any TestClientProtocol, Int, NATSConnection, EventStreamRoute) async throws -> Void) async throws {
        try await CommandAPIHarness.with(pipeline: pipeline, environment: environment) { api, nats, pool in
            let configuration = try StreamerConfiguration(environment: [
                "JWT_PUBLIC_KEYS": TestInfrastructure.tokenKey.environment["JWT_PUBLIC_KEYS"]!, "SSE_HEARTBEAT_SECONDS": "1",
            ].merging(environment) { $1 })
            let logger = Logger(label: "streamer-test")
            let streamer = await StreamerApplication(configuration: configuration, pool: pool, nats: nats, checks: [],
                                                     registry: PrometheusCollectorRegistry(), logger: logger)
            let feed = try await SessionRevocationFeed.start(connection: nats, pool: pool, revocations: streamer.revocations,
                                                             pollInterval: .seconds(configuration.revocationPollSeconds), logger: logger)
            let feeding = Task { try await feed.run() }
            defer { feeding.cancel() }
            let presenceService = streamer.presenceService
            let presenceSubscription = try await presenceService.subscribe()
            let presence = Task { await presenceService.run(with: presenceSubscription) }
            defer { presence.cancel(); Task { await presenceSubscription.unsubscribe() } }
            let notifications = streamer.notifications
            let notifying = Task { try await notifications.run() }
            defer { notifying.cancel() }
            let events = streamer.events
            try await Application(router: streamer.router, server: streamer.server(configuration)).test(.live) { client in
                try await body(api, client, client.port ?? 0, nats, events)
            }
        }
    }

    static func stream(_ port: Int, _ group: String, _ session: Session, lastEventID: Int64? = nil, reading: Bool = true) throws -> SSETestClient {
        var headers = ["Authorization": "Bearer \(session.token)"]
        if let lastEventID { headers["Last-Event-ID"] = String(lastEventID) }
        return try SSETestClient(port: port, path: "/events?group_id=\(group)", headers: headers, reading: reading)
    }

    static func create(_ api: Client, _ session: Session, _ group: String, _ title: String) async throws -> String {
        let answer = try await api.call(.post, "/api/v1/command", token: session.token,
                                        ["action": "create-todo", "group_id": group, "title": title])
        #expect(answer.status == .accepted)
        return answer.json["todo_id"] as? String ?? ""
    }

    static func json(_ event: SSEEvent) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(event.data.joined(separator: "\n").utf8)) as? [String: Any]) ?? [:]
    }

    @Test func anotherMembersCommandArrivesAsTodoEventAndPatch() async throws {
        try await Self.with { api, _, port, _ in
            let alice = try await api.register("alice")
            let bob = try await api.register("bob")
            let group = try await api.createGroup(alice)
            #expect(try await api.call(.post, "/api/v1/groups/\(group)/members", token: alice.token,
                                       ["username": bob.username, "role": "member"]).status == .noContent)
            let bobs = try Self.stream(port, group, bob)
            #expect(await bobs.next(within: .seconds(10)) { $0.name == "retry" } != nil)

            let todo = try await Self.create(api, alice, group, "<b>Ship</b>")
            let event = await bobs.next(within: .seconds(10)) { $0.name == "todo-event" && Self.json($0)["todo_id"] as? String == todo }
            let received = try #require(event)
            #expect(Self.json(received)["event_type"] as? String == "todo.created")
            #expect(Self.json(received)["actor_name"] as? String == alice.username)
            let patch = try #require(await bobs.next(within: .seconds(10)) { $0.name == "datastar-patch-elements" })
            #expect(patch.id == received.id)
            #expect(patch.data.contains("selector #cards-todo"))
            #expect(patch.data.contains("mode append"))
            let elements = patch.data.first { $0.hasPrefix("elements ") } ?? ""
            #expect(elements.contains("id=\"todo-\(todo)\""))
            #expect(elements.contains("&lt;b&gt;Ship&lt;/b&gt;") && !elements.contains("<b>Ship"))
            // Heartbeats keep flowing (every second in this test).
            #expect(await bobs.next(within: .seconds(10)) { $0.name == "comment" && $0.data == [" ping"] } != nil)
            bobs.close()
        }
    }

    @Test func resumingWithLastEventIDReplaysExactlyWhatWasMissed() async throws {
        try await Self.with { api, _, port, _ in
            let alice = try await api.register("alice")
            let group = try await api.createGroup(alice)
            let first = try Self.stream(port, group, alice)
            _ = await first.next(within: .seconds(10)) { $0.name == "retry" }
            var seen: [Int64] = []
            for index in 0..<3 { _ = try await Self.create(api, alice, group, "before \(index)") }
            while seen.count < 3, let event = await first.next(within: .seconds(10), where: { $0.name == "todo-event" }) {
                if Self.json(event)["event_type"] as? String == "todo.created" { seen.append(Int64(event.id ?? "") ?? -1) }
            }
            first.close()
            let lastSeen = try #require(seen.last)
            #expect(seen == [lastSeen - 2, lastSeen - 1, lastSeen])

            var missedTitles: [String] = []
            for index in 0..<4 {
                missedTitles.append("missed \(index)")
                _ = try await Self.create(api, alice, group, "missed \(index)")
            }
            let resumed = try Self.stream(port, group, alice, lastEventID: lastSeen)
            var replayed: [(Int64, String)] = []
            while replayed.count < 4, let event = await resumed.next(within: .seconds(10), where: { $0.name == "todo-event" }) {
                replayed.append((Int64(event.id ?? "") ?? -1, Self.json(event)["title"] as? String ?? ""))
            }
            #expect(replayed.map(\.0) == [lastSeen + 1, lastSeen + 2, lastSeen + 3, lastSeen + 4])
            #expect(replayed.map(\.1) == missedTitles)
            // Then live, with no gap and no repeat.
            _ = try await Self.create(api, alice, group, "live")
            let live = await resumed.next(within: .seconds(10)) { $0.name == "todo-event" }
            #expect(live?.id == String(lastSeen + 5))
            #expect(live.map { Self.json($0)["title"] as? String } == "live")
            resumed.close()
        }
    }

    @Test func aRemovedMembersStreamEnds() async throws {
        try await Self.with { api, _, port, _ in
            let alice = try await api.register("alice")
            let bob = try await api.register("bob")
            let group = try await api.createGroup(alice)
            #expect(try await api.call(.post, "/api/v1/groups/\(group)/members", token: alice.token,
                                       ["username": bob.username, "role": "member"]).status == .noContent)
            let bobs = try Self.stream(port, group, bob)
            _ = await bobs.next(within: .seconds(10)) { $0.name == "retry" }
            #expect(try await api.call(.delete, "/api/v1/groups/\(group)/members/\(bob.username)", token: alice.token).status == .noContent)
            let removal = await bobs.next(within: .seconds(10)) { Self.json($0)["event_type"] as? String == "member.removed" }
            #expect(removal.map { Self.json($0)["member_user_id"] as? String } == bob.userID)
            // The server ends the stream: the event sequence finishes.
            var ended = false
            for _ in 0..<100 {
                if bobs.closedByServer.load(ordering: .relaxed) { ended = true; break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(ended)
            // And bob can no longer open one.
            let again = try Self.stream(port, group, bob)
            _ = await again.next(within: .seconds(2))
            #expect(again.status == 403)
        }
    }

    @Test func streamsPastTheCapAreRefusedAndAFreedSlotIsReused() async throws {
        try await Self.with(pipeline: false, environment: ["SSE_MAX_STREAMS": "2"]) { api, _, port, _ in
            let alice = try await api.register("alice")
            let group = try await api.createGroup(alice)
            let first = try Self.stream(port, group, alice)
            let second = try Self.stream(port, group, alice)
            #expect(await first.next(within: .seconds(5)) { $0.name == "retry" } != nil)
            #expect(await second.next(within: .seconds(5)) { $0.name == "retry" } != nil)
            let third = try Self.stream(port, group, alice)
            _ = await third.next(within: .seconds(2))
            #expect(third.status == 503)

            // A stream that ends frees its slot (the server notices at the next heartbeat, 1 s here).
            first.close()
            var admitted = false
            for _ in 0..<20 where !admitted {
                try await Task.sleep(for: .milliseconds(500))
                let next = try Self.stream(port, group, alice)
                _ = await next.next(within: .seconds(1)) { $0.name == "retry" }
                admitted = next.status == 200
                next.close()
            }
            #expect(admitted)
            second.close()
        }
    }

    @Test func shutdownEndsStreamsWithARetryHintAndRefusesNewOnes() async throws {
        try await Self.withStreamer(pipeline: false) { api, _, port, _, events in
            let alice = try await api.register("alice")
            let group = try await api.createGroup(alice)
            let stream = try Self.stream(port, group, alice)
            #expect(await stream.next(within: .seconds(5)) { $0.name == "retry" }?.data == ["1000"])
            await events.drain()
            let hint = await stream.next(within: .seconds(5)) { $0.name == "retry" }
            let milliseconds = Int(hint?.data.first ?? "") ?? 0
            #expect((1000...5000).contains(milliseconds), "a reconnection hint of 1–5 s, got \(hint?.data ?? [])")
            var ended = false
            for _ in 0..<50 where !ended {
                ended = stream.closedByServer.load(ordering: .relaxed)
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(ended, "the stream ends")
            let late = try Self.stream(port, group, alice)
            _ = await late.next(within: .seconds(2))
            #expect(late.status == 503)
        }
    }

    @Test func everyReadChecksTokenAndMembership() async throws {
        try await Self.with(pipeline: false) { api, streamer, port, _ in
            let alice = try await api.register("alice")
            let mallory = try await api.register("mallory")
            let group = try await api.createGroup(alice)
            let paths = ["/api/v1/groups/\(group)/members", "/api/v1/todos?group_id=\(group)", "/api/v1/groups/\(group)/events?after=0",
                         "/ui/workspace?group_id=\(group)", "/ui/members?group_id=\(group)", "/ui/settings?group_id=\(group)"]
            for path in paths {
                let headers: (Session?) -> HTTPFields = { session in session.map { [.authorization: "Bearer \($0.token)"] } ?? [:] }
                try await streamer.execute(uri: path, method: .get, headers: headers(nil)) { #expect($0.status == .unauthorized, "\(path)") }
                try await streamer.execute(uri: path, method: .get, headers: headers(mallory)) { #expect($0.status == .forbidden, "\(path)") }
                try await streamer.execute(uri: path, method: .get, headers: headers(alice)) { #expect($0.status == .ok, "\(path)") }
                let unknown = path.replacingOccurrences(of: group, with: "no-such-group")
                try await streamer.execute(uri: unknown, method: .get, headers: headers(alice)) { #expect($0.status == .notFound, "\(unknown)") }
            }
            let auth: HTTPFields = [.authorization: "Bearer \(alice.token)"]
            for bad in ["/api/v1/todos?group_id=\(group)&limit=0", "/api/v1/todos?group_id=\(group)&limit=201",
                        "/api/v1/todos?group_id=\(group)&cursor=nonsense", "/api/v1/todos", "/api/v1/groups/\(group)/events?after=-1"] {
                try await streamer.execute(uri: bad, method: .get, headers: auth) { #expect($0.status == .badRequest, "\(bad)") }
            }
            try await streamer.execute(uri: "/ui/overview", method: .get, headers: [:]) { #expect($0.status == .unauthorized) }
            // Pages are shells: served without a session (the script sends such users to /login).
            for page in ["/", "/login", "/app", "/settings", "/architecture", "/assets/app.js"] {
                try await streamer.execute(uri: page, method: .get, headers: [:]) { #expect($0.status == .ok, "\(page)") }
            }
            try await streamer.execute(uri: "/api/v1/groups", method: .get, headers: [.authorization: "Bearer \(mallory.token)"]) { response in
                let groups = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])?["groups"] as? [Any]
                #expect(groups?.isEmpty == true)
            }
            let sse = try Self.stream(port, group, mallory)
            _ = await sse.next(within: .seconds(2))
            #expect(sse.status == 403)
            let anonymous = try SSETestClient(port: port, path: "/events?group_id=\(group)", headers: [:])
            _ = await anonymous.next(within: .seconds(2))
            #expect(anonymous.status == 401)
            // Last-Event-ID is a group version: digits only, never "+5", "-1" or text.
            for bad in ["+5", "-1", "1e3", "abc", "1 2", String(repeating: "9", count: 19)] {
                let sse = try SSETestClient(port: port, path: "/events?group_id=\(group)",
                                            headers: ["Authorization": "Bearer \(alice.token)", "Last-Event-ID": bad])
                for _ in 0..<40 where sse.status == 0 { try await Task.sleep(for: .milliseconds(50)) }
                #expect(sse.status == 400, "Last-Event-ID \(bad)")
                sse.close()
            }
        }
    }

    @Test func readsReturnTheBoardInOrderWithItsOffset() async throws {
        try await Self.with { api, streamer, _, _ in
            let alice = try await api.register("alice")
            let group = try await api.createGroup(alice)
            for index in 0..<5 { _ = try await Self.create(api, alice, group, "todo \(index)") }
            let auth: HTTPFields = [.authorization: "Bearer \(alice.token)"]
            // Wait for the projection: the offset reaches member.added + 5 creates.
            var page: [String: Any] = [:]
            for _ in 0..<100 {
                page = try await streamer.execute(uri: "/api/v1/todos?group_id=\(group)&limit=2", method: .get, headers: auth) {
                    (try? JSONSerialization.jsonObject(with: Data(buffer: $0.body)) as? [String: Any]) ?? [:]
                }
                if ((page["offset"] as? [String: Any])?["group_version"] as? Int) == 6 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(((page["offset"] as? [String: Any])?["group_version"] as? Int) == 6)
            var titles = ((page["todos"] as? [[String: Any]]) ?? []).map { $0["title"] as? String ?? "" }
            var cursor = page["next_cursor"] as? String
            while let next = cursor {
                let more = try await streamer.execute(uri: "/api/v1/todos?group_id=\(group)&limit=2&cursor=\(next)", method: .get, headers: auth) {
                    (try? JSONSerialization.jsonObject(with: Data(buffer: $0.body)) as? [String: Any]) ?? [:]
                }
                titles += ((more["todos"] as? [[String: Any]]) ?? []).map { $0["title"] as? String ?? "" }
                cursor = more["next_cursor"] as? String
            }
            #expect(titles == (0..<5).map { "todo \($0)" })
            let history = try await streamer.execute(uri: "/api/v1/groups/\(group)/events?after=1&limit=3", method: .get, headers: auth) {
                (try? JSONSerialization.jsonObject(with: Data(buffer: $0.body)) as? [String: Any]) ?? [:]
            }
            #expect(((history["events"] as? [[String: Any]]) ?? []).map { $0["group_version"] as? Int ?? 0 } == [2, 3, 4])
            #expect(history["next_after"] as? Int == 4)
            let groups = try await streamer.execute(uri: "/api/v1/groups", method: .get, headers: auth) {
                (try? JSONSerialization.jsonObject(with: Data(buffer: $0.body)) as? [String: Any]) ?? [:]
            }
            let summary = ((groups["groups"] as? [[String: Any]]) ?? []).first { $0["group_id"] as? String == group }
            #expect(summary?["role"] as? String == "owner")
            #expect(summary?["member_count"] as? Int == 1)
            #expect((summary?["todo_counts"] as? [String: Int])?["todo"] == 5)
        }
    }

    @Test func aSlowClientIsDroppedWhileAFastOneKeepsReceiving() async throws {
        try await Self.with(pipeline: false, environment: ["SSE_CLIENT_BUFFER": "64"]) { api, _, port, nats in
            let alice = try await api.register("alice")
            let group = try await api.createGroup(alice)
            let fast = try Self.stream(port, group, alice)
            let slow = try Self.stream(port, group, alice, reading: false)
            _ = await fast.next(within: .seconds(10)) { $0.name == "retry" }
            try await Task.sleep(for: .milliseconds(300)) // both joined

            // Synthetic events straight onto the group's event subject, paced so a reading client keeps up.
            let subject = GroupSubject.event(try GroupID(group)).subject
            let notes = String(repeating: "n", count: 4000)
            let total = 1500
            for batchStart in stride(from: 1, through: total, by: 25) {
                var batch: [OutgoingMessage] = []
                for version in batchStart..<min(batchStart + 25, total + 1) {
                    let event = TodoEvent(
                        eventID: "evt-slow-\(group)-\(version)", commandID: "slow-\(version)", eventType: .todoCreated, groupID: group,
                        todoID: "t\(version)", actorUserID: alice.userID, actorName: alice.username, occurredAt: Date(),
                        shardID: GroupSubject.event(try GroupID(group)).shard, groupVersion: Int64(version))
                    var filled = event
                    filled.title = "t\(version)"; filled.notes = notes; filled.status = .todo; filled.version = 1
                    batch.append(OutgoingMessage(subject: subject, payload: try MessageCoding.encoder().encode(filled)))
                }
                for result in await nats.jetStream.publishBatch(batch) { _ = try result.get() }
                try await Task.sleep(for: .milliseconds(20))
            }
            var last: Int64 = 0
            while last < Int64(total), let event = await fast.next(within: .seconds(10), where: { $0.name == "todo-event" }) {
                last = Int64(event.id ?? "") ?? last
            }
            #expect(last == Int64(total))
            #expect(slow.serverClosed(within: .seconds(10)))
            fast.close()
        }
    }
}
