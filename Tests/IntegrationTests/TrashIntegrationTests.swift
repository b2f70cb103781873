import CommandAPI
@testable import DataSink
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The trash (DESIGN §10) end to end: todos deleted through command-api are listed by the
/// streamer's `GET /api/v1/todos?deleted=true`, `restore-todo` brings one back under the rules of
/// delete, and the sink purges what has been there longer than 30 days.
@Suite("Trash", .serialized)
struct TrashIntegrationTests {
    typealias Client = CommandAPIHarness.Client

    @Test func deletedTodosAreListedRestoredUnderTheRulesOfDeleteAndPurged() async throws {
        try await StreamerIntegrationTests.withStreamer(pipeline: true) { api, streamerClient, _, _, _ in
            let streamer = Client(client: streamerClient)
            let alice = try await api.register("alice")
            let bob = try await api.register("bob")
            let eve = try await api.register("eve")
            let group = try await api.createGroup(alice, name: "Bin")
            #expect(try await api.call(.post, "/api/v1/groups/\(group)/members", token: alice.token,
                                       ["username": bob.username, "role": "member"]).status == .noContent)
            func command(_ session: Client.Session, _ body: [String: Any]) async throws -> Client.Answer {
                var body = body
                body["group_id"] = group
                let answer = try await api.call(.post, "/api/v1/command", token: session.token, body)
                #expect(answer.status == .accepted, "\(answer.json)")
                return answer
            }
            func outcome(_ answer: Client.Answer, _ session: Client.Session) async throws -> [String: Any] {
                let id = answer.json["command_id"] as? String ?? ""
                var status: [String: Any] = [:]
                _ = try await Poll.seconds("the outcome of \(id)") {
                    status = try await api.call(.get, "/api/v1/commands/\(id)", token: session.token).json
                    return status["status"] as? String != "pending"
                }
                return status
            }
            let first = try await command(alice, ["action": "create-todo", "title": "First", "labels": ["keep"]]).json["todo_id"] as? String ?? ""
            let second = try await command(alice, ["action": "create-todo", "title": "Second"]).json["todo_id"] as? String ?? ""
            let bobs = try await command(bob, ["action": "create-todo", "title": "Bob's"]).json["todo_id"] as? String ?? ""
            for (session, todo) in [(alice, first), (alice, second), (bob, bobs)] {
                #expect(try await outcome(try await command(session, ["action": "delete-todo", "todo_id": todo]), session)["status"] as? String == "applied")
            }

            func page(_ session: Client.Session, _ query: String) async throws -> Client.Answer {
                try await streamer.call(.get, "/api/v1/todos?group_id=\(group)\(query)", token: session.token)
            }
            func ids(_ answer: Client.Answer) -> [String] { (answer.json["todos"] as? [[String: Any]] ?? []).compactMap { $0["todo_id"] as? String } }
            let trash = try await page(bob, "&deleted=true")
            #expect(trash.status == .ok)
            #expect(ids(trash) == [bobs, second, first], "every member sees the trash, the latest deletion first")
            let entry = (trash.json["todos"] as? [[String: Any]])?.last ?? [:]
            #expect(entry["deleted_by_name"] as? String == alice.username && entry["labels"] as? [String] == ["keep"])
            let deletedAt = ISO8601DateFormatter().date(from: entry["deleted_at"] as? String ?? "")
            let until = ISO8601DateFormatter().date(from: entry["restorable_until"] as? String ?? "")
            #expect(deletedAt != nil && until.map { $0.timeIntervalSince(deletedAt!) } == 30 * 86_400)
            #expect(ids(try await page(alice, "")).isEmpty, "the board shows none of them")

            var walked: [String] = []
            var cursor = ""
            for _ in 0..<4 {
                let answer = try await page(alice, "&deleted=true&limit=1" + (cursor.isEmpty ? "" : "&cursor=\(cursor)"))
                walked += ids(answer)
                guard let next = answer.json["next_cursor"] as? String else { break }
                cursor = next
            }
            #expect(walked == [bobs, second, first], "the trash pages by its cursor")
            #expect(try await page(alice, "&deleted=yes").status == .badRequest)
            let boardCursor = try await page(alice, "&deleted=true&cursor=MDowOng").status
            #expect(boardCursor == .badRequest, "a board cursor is not a trash cursor")
            let huge = Data("t:9223372036854775807:x".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
            #expect(try await page(alice, "&deleted=true&cursor=\(huge)").status == .badRequest, "a forged cursor out of range is a 400")
            for forged in ["t:1:\u{0}", "t:1:a b", "t:1:" + String(repeating: "x", count: 200)] {
                let text = Data(forged.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                    .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
                #expect(try await page(alice, "&deleted=true&cursor=\(text)").status == .badRequest, "a forged cursor's id: \(forged.debugDescription)")
            }
            #expect(try await page(eve, "&deleted=true").status == .forbidden, "not a member: no trash")

            // Restore: bob may not restore alice's todo (a member may not delete it either); alice may.
            #expect(try await outcome(try await command(bob, ["action": "restore-todo", "todo_id": first]), bob)["code"] as? String == "forbidden")
            let restored = try await outcome(try await command(alice, ["action": "restore-todo", "todo_id": first, "expected_version": 2]), alice)
            #expect(restored["status"] as? String == "applied", "\(restored)")
            #expect(try await outcome(try await command(alice, ["action": "restore-todo", "todo_id": first]), alice)["code"] as? String == "not_deleted")
            let board = try await page(alice, "")
            #expect(ids(board) == [first] && (board.json["todos"] as? [[String: Any]])?.first?["version"] as? Int == 3)
            #expect(ids(try await page(alice, "&deleted=true")) == [bobs, second])

            // Purge: a todo deleted more than 30 days ago leaves the trash and its row goes; its events stay.
            let pool = try await TestInfrastructure.pool(maxConnections: 2)
            _ = try await pool.query("UPDATE todos SET deleted_at = now() - interval '31 days' WHERE group_id = $1 AND todo_id = $2", group, second)
            #expect(ids(try await page(alice, "&deleted=true")) == [bobs], "past its 30 days a todo is no longer restorable")
            let purge = TrashPurge(pool: pool, interval: .seconds(3600), logger: Logger(label: "trash-test"))
            #expect(try await purge.purge() >= 1)
            #expect(try await pool.query("SELECT 1 FROM todos WHERE group_id = $1 AND todo_id = $2", group, second).isEmpty)
            #expect(try await pool.query("SELECT 1 FROM todos WHERE group_id = $1", group).count == 2, "the live todo and the recent trash stay")
            #expect(try await pool.query("SELECT 1 FROM todo_events WHERE group_id = $1 AND todo_id = $2", group, second).count == 2,
                    "the history keeps the purged todo's events")
            await pool.shutdown()
        }
    }
}
