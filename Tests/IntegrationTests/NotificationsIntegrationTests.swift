import CommandAPI
import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Streamer
import Testing

/// Notifications end to end (DESIGN §9): the scheduler writes them from events, the streamer lists
/// them and moves the bell over the page's one stream, command-api marks them read; nobody sees
/// another user's.
@Suite("Notifications", .serialized)
struct NotificationsIntegrationTests {
    typealias Session = CommandAPIHarness.Client.Session

    static func bell(_ event: SSEEvent) -> Int? {
        guard event.name == "datastar-patch-elements",
              let line = event.data.first(where: { $0.contains("id=\"bell-count\"") }),
              let range = line.range(of: #"data-unread="(\d+)""#, options: .regularExpression) else { return nil }
        return Int(line[range].dropFirst(#"data-unread=""#.count).dropLast())
    }

    static func list(_ client: any TestClientProtocol, _ session: Session, query: String = "") async throws -> (HTTPResponse.Status, [String: Any]) {
        try await get(client, "/api/v1/notifications\(query)", session)
    }

    static func get(_ client: any TestClientProtocol, _ path: String, _ session: Session) async throws -> (HTTPResponse.Status, [String: Any]) {
        try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer \(session.token)"], body: nil) { response in
            (response.status, (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:])
        }
    }

    @Test func assignmentsAndFiredRemindersRingTheirUsersBellOnly() async throws {
        try await StreamerIntegrationTests.with { api, client, port, nats in
            let scheduler = try await SchedulerIntegrationTests.startScheduler("scheduler-notifications")
            try await SchedulerIntegrationTests.stopping({ await scheduler.stop() }) {
                try await SchedulerIntegrationTests.waitCaughtUp(nats)
                let alice = try await api.register("alice")
                let bob = try await api.register("bob")
                let group = try await api.createGroup(alice)
                #expect(try await api.call(.post, "/api/v1/groups/\(group)/members", token: alice.token,
                                           ["username": bob.username, "role": "member"]).status == .noContent)
                // Bob's page without a board: one stream, the bell only, starting at his count.
                let bobs = try SSETestClient(port: port, path: "/events", headers: ["Authorization": "Bearer \(bob.token)"])
                #expect(await bobs.next(within: .seconds(10)) { Self.bell($0) != nil }.flatMap(Self.bell) == 0)

                // Alice names Bob as the assignee: his bell rings; naming herself rings nothing.
                let assigned = try await api.call(.post, "/api/v1/command", token: alice.token,
                                                  ["action": "create-todo", "group_id": group, "title": "Book the room", "assignee": bob.username])
                let todo = assigned.json["todo_id"] as? String ?? ""
                _ = try await api.call(.post, "/api/v1/command", token: alice.token,
                                       ["action": "create-todo", "group_id": group, "title": "Mine", "assignee": alice.username])
                #expect(await bobs.next(within: .seconds(10)) { Self.bell($0) == 1 } != nil, "Bob's bell shows 1 within seconds")

                // Bob's own reminder fires: a second notification, marked as a reminder.
                let fireAt = SchedulerIntegrationTests.instant(after: 4)
                let remindAt = SchedulerIntegrationTests.localTime.string(from: fireAt)
                #expect(try await api.call(.post, "/api/v1/command", token: bob.token, [
                    "action": "set-reminder", "group_id": group, "todo_id": todo, "remind_at": remindAt, "timezone": "UTC",
                ]).status == .accepted)
                // Until it fires, Bob sees his reminder on the card; Alice sees none of his.
                _ = try await Poll.seconds("Bob's reminder is listed") {
                    let (status, body) = try await Self.get(client, "/api/v1/groups/\(group)/reminders", bob)
                    let reminders = body["reminders"] as? [[String: Any]] ?? []
                    return status == .ok && reminders.count == 1 && reminders[0]["todo_id"] as? String == todo
                        && reminders[0]["remind_at"] as? String == remindAt && reminders[0]["timezone"] as? String == "UTC"
                }
                #expect((try await Self.get(client, "/api/v1/groups/\(group)/reminders", alice).1["reminders"] as? [Any])?.isEmpty == true)
                let outsider = try await api.register("eve")
                #expect(try await Self.get(client, "/api/v1/groups/\(group)/reminders", outsider).0 == .forbidden)
                #expect(await bobs.next(within: .seconds(15)) { Self.bell($0) == 2 } != nil, "the fired reminder rings")

                let (status, list) = try await Self.list(client, bob)
                #expect(status == .ok)
                let items = list["notifications"] as? [[String: Any]] ?? []
                #expect(items.map { $0["kind"] as? String } == ["reminder", "assigned"])
                #expect(items.allSatisfy { $0["todo_id"] as? String == todo && $0["group_id"] as? String == group && $0["title"] as? String == "Book the room" })
                #expect(items.allSatisfy { $0["read_at"] is NSNull })
                #expect(list["unread"] as? Int == 2)
                let ids = items.compactMap { $0["id"] as? Int }
                // Paging: the one before the newest.
                let (_, older) = try await Self.list(client, bob, query: "?limit=1&before=\(ids[0])")
                #expect((older["notifications"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [ids[1]])

                // Alice sees none of them, and cannot mark them read.
                let (_, alices) = try await Self.list(client, alice)
                #expect((alices["notifications"] as? [[String: Any]])?.isEmpty == true)
                #expect(alices["unread"] as? Int == 0)
                #expect(try await api.call(.post, "/api/v1/notifications/read", token: alice.token, ["ids": ids]).status == .noContent)
                #expect(try await Self.list(client, bob).1["unread"] as? Int == 2)

                // Bob reads one, then all: his stream follows.
                #expect(try await api.call(.post, "/api/v1/notifications/read", token: bob.token, ["ids": [ids[0]]]).status == .noContent)
                #expect(await bobs.next(within: .seconds(10)) { Self.bell($0) == 1 } != nil)
                #expect(try await api.call(.post, "/api/v1/notifications/read", token: bob.token, ["all": true]).status == .noContent)
                #expect(await bobs.next(within: .seconds(10)) { Self.bell($0) == 0 } != nil)
                let read = try await Self.list(client, bob)
                #expect(read.1["unread"] as? Int == 0)
                #expect((read.1["notifications"] as? [[String: Any]])?.allSatisfy { $0["read_at"] is String } == true)
                bobs.close()

                // A board's stream carries the bell too (no second stream per tab).
                let board = try StreamerIntegrationTests.stream(port, group, bob)
                #expect(await board.next(within: .seconds(10)) { Self.bell($0) != nil }.flatMap(Self.bell) == 0)
                board.close()
            }
        }
    }

    @Test func oddInputsAreRefusedWithClearErrors() async throws {
        try await StreamerIntegrationTests.with(pipeline: false) { api, client, _, _ in
            let carol = try await api.register("carol")
            for body: [String: Any] in [[:], ["ids": []], ["ids": ["1"]], ["ids": [0]], ["ids": [1.5]], ["all": false],
                                        ["all": true, "ids": [1]], ["ids": [1], "extra": 1], ["ids": Array(repeating: 1, count: 501)]] {
                let answer = try await api.call(.post, "/api/v1/notifications/read", token: carol.token, body)
                #expect(answer.status == .badRequest, "\(body)")
                #expect(!answer.error.isEmpty)
            }
            #expect(try await api.call(.post, "/api/v1/notifications/read", ["all": true]).status == .unauthorized)
            for query in ["?limit=0", "?limit=101", "?limit=x", "?before=-1", "?before=abc", "?before=0"] {
                #expect(try await Self.list(client, carol, query: query).0 == .badRequest, "\(query)")
            }
            let unauthenticated = try await client.execute(uri: "/api/v1/notifications", method: .get, headers: [:], body: nil) { $0.status }
            #expect(unauthenticated == .unauthorized)
        }
    }
}
