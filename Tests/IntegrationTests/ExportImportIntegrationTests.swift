import CommandAPI
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Streamer
import Testing

/// Export and import (DESIGN §10) end to end: a group built through command-api, the engine and
/// the sink is exported by the streamer (JSON with its whole history, and CSV), imported through
/// command-api as a new group, and exported again with the same todos.
@Suite("Export and import", .serialized)
struct ExportImportIntegrationTests {
    typealias Client = CommandAPIHarness.Client

    struct Download {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let bytes: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any] ?? [:] }
        var todos: [[String: Any]] { json["todos"] as? [[String: Any]] ?? [] }
    }

    static func download(_ streamer: any TestClientProtocol, _ group: String, _ session: Client.Session, query: String = "") async throws -> Download {
        try await streamer.execute(uri: "/api/v1/groups/\(group)/export\(query)", method: .get,
                                   headers: [.authorization: "Bearer \(session.token)"], body: nil) { response in
            Download(status: response.status, headers: response.headers, bytes: Data(buffer: response.body))
        }
    }

    static func upload(_ api: Client, _ session: Client.Session, _ body: Data) async throws -> (status: HTTPResponse.Status, json: [String: Any]) {
        try await api.client.execute(uri: "/api/v1/groups/import", method: .post,
                                     headers: [.authorization: "Bearer \(session.token)", .contentType: "application/json"],
                                     body: ByteBuffer(bytes: body)) { response in
            (response.status, (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:])
        }
    }

    /// Collects what a response body writes.
    final class Collected: @unchecked Sendable {
        var bytes = ByteBuffer()
    }

    struct Collector: ResponseBodyWriter {
        let into: Collected
        mutating func write(_ buffer: ByteBuffer) async throws { into.bytes.writeImmutableBuffer(buffer) }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    static func body(_ response: Response) async throws -> Data {
        let collected = Collected()
        try await response.body.write(Collector(into: collected))
        return Data(buffer: collected.bytes)
    }

    /// What an import keeps of a todo: everything but who made it and its version.
    static func content(_ todos: [[String: Any]], clearing assignee: String? = nil) -> [String] {
        todos.map { todo in
            var kept = todo.filter { ["todo_id", "title", "notes", "status", "position", "due_date", "assignee", "labels"].contains($0.key) }
            if let assignee, kept["assignee"] as? String == assignee { kept["assignee"] = nil }
            return String(decoding: try! JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    @Test func exportImportExportKeepsTheTodosAndTheHistoryIsWhole() async throws {
        try await StreamerIntegrationTests.withStreamer(pipeline: true) { api, streamer, _, _, _ in
            let alice = try await api.register("alice")
            let bob = try await api.register("bob")
            let carol = try await api.register("carol")
            let group = try await api.createGroup(alice, name: "Launch, \"v2\"")
            for (who, role) in [(bob, "member"), (carol, "admin")] {
                #expect(try await api.call(.post, "/api/v1/groups/\(group)/members", token: alice.token,
                                           ["username": who.username, "role": role]).status == .noContent)
            }
            func command(_ body: [String: Any]) async throws -> String {
                var body = body
                body["group_id"] = group
                let answer = try await api.call(.post, "/api/v1/command", token: alice.token, body)
                #expect(answer.status == .accepted, "\(answer.json)")
                return answer.json["todo_id"] as? String ?? ""
            }
            let first = try await command(["action": "create-todo", "title": "=cmd|' /C calc'!A0", "notes": "a, \"b\"\nc",
                                           "labels": ["ops", "q4"], "due_date": "2026-12-24", "assignee": alice.username])
            _ = try await command(["action": "create-todo", "title": "Bob's part", "assignee": bob.username, "status": "in_progress"])
            let gone = try await command(["action": "create-todo", "title": "Dropped"])
            _ = try await command(["action": "move-todo", "todo_id": first, "status": "done"])
            _ = try await command(["action": "delete-todo", "todo_id": gone])
            let pool = try await TestInfrastructure.pool(maxConnections: 2)
            try await Projection.waitForVersion(pool, group: group, atLeast: 8)

            let export = try await Self.download(streamer, group, alice)
            #expect(export.status == .ok && export.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(export.headers[.contentDisposition] == "attachment; filename=\"teamboard-\(group).json\"")
            #expect(export.json["format"] as? String == "teamboard-export" && export.json["format_version"] as? Int == 1)
            let exportedGroup = export.json["group"] as? [String: Any] ?? [:]
            #expect(exportedGroup["name"] as? String == "Launch, \"v2\"" && exportedGroup["group_version"] as? Int == 8)
            #expect(Set((export.json["members"] as? [[String: Any]] ?? []).compactMap { $0["username"] as? String })
                    == [alice.username, bob.username, carol.username])
            #expect(export.todos.count == 2 && !export.todos.contains { $0["todo_id"] as? String == gone }, "live todos only")
            let events = export.json["events"] as? [[String: Any]] ?? []
            #expect(events.compactMap { $0["group_version"] as? Int } == Array(1...8), "the whole history, in order, without a gap")
            #expect(events.last?["event_type"] as? String == "todo.deleted")

            #expect(export.json["complete"] as? Bool == true, "the last field says the document is whole")

            // Pages: an export read 2 (or 1) rows at a time is the same document, byte for byte.
            let aliceID = try #require(UUID(uuidString: alice.userID))
            let summary = try #require(try await ReadStore(pool: pool).group(group, of: aliceID))
            let when = Date(timeIntervalSince1970: 1_800_000_000)
            for format in [GroupExport.Format.json, .csv] {
                let whole = try await Self.body(GroupExport(store: ReadStore(pool: pool)).response(for: summary, format: format, now: when))
                for pageSize in [1, 2] {
                    let paged = try await Self.body(GroupExport(store: ReadStore(pool: pool), pageSize: pageSize)
                        .response(for: summary, format: format, now: when))
                    #expect(paged == whole, "\(format) in pages of \(pageSize)")
                }
                if format == .json {
                    let parsed = try JSONSerialization.jsonObject(with: whole) as? [String: Any] ?? [:]
                    #expect((parsed["events"] as? [Any])?.count == 8 && (parsed["todos"] as? [Any])?.count == 2)
                }
            }

            // CSV: the todos, quoted, and no cell a spreadsheet would run.
            let csv = try await Self.download(streamer, group, alice, query: "?format=csv")
            let text = String(decoding: csv.bytes, as: UTF8.self)
            #expect(csv.status == .ok && csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(text.hasPrefix("todo_id,title,status,position,due_date,assignee,labels,notes,created_by_name,version\r\n"))
            #expect(text.contains("'=cmd|' /C calc'!A0"), "the formula is defused: \(text)")
            #expect(text.contains("\"a, \"\"b\"\"\nc\"") && text.contains("\"ops, q4\"") && text.contains("2026-12-24"))

            // Who may export: owners and admins.
            #expect(try await Self.download(streamer, group, carol).status == .ok)
            #expect(try await Self.download(streamer, group, bob).status == .forbidden)
            #expect(try await Self.download(streamer, group, alice, query: "?format=xml").status == .badRequest)
            let eve = try await api.register("eve")
            #expect(try await Self.download(streamer, group, eve).status == .forbidden)

            // Import as carol: a new group she owns, with the same todos; bob is not a member there.
            let imported = try await Self.upload(api, carol, export.bytes)
            #expect(imported.status == .created, "\(imported.json)")
            let copy = imported.json["id"] as? String ?? ""
            #expect(copy != group && imported.json["todos"] as? Int == 2 && imported.json["assignees_cleared"] as? Int == 2,
                    "alice's and bob's assignments are cleared: neither is in carol's new group")
            try await Projection.waitForVersion(pool, group: copy, atLeast: 3)
            let again = try await Self.download(streamer, copy, carol)
            #expect(again.status == .ok)
            let cleared = Self.content(export.todos, clearing: alice.username).map { $0.replacingOccurrences(of: "\"assignee\":\"\(bob.username)\",", with: "") }
            #expect(Self.content(again.todos) == cleared, "export → import → export: the same todos")
            #expect((again.json["members"] as? [[String: Any]] ?? []).compactMap { $0["username"] as? String } == [carol.username])

            // Alice imports her own export: her assignment stays.
            let own = try await Self.upload(api, alice, export.bytes)
            #expect(own.status == .created && own.json["assignees_cleared"] as? Int == 1)
            let ownCopy = own.json["id"] as? String ?? ""
            try await Projection.waitForVersion(pool, group: ownCopy, atLeast: 3)
            let ownAgain = try await Self.download(streamer, ownCopy, alice)
            #expect(Self.content(ownAgain.todos, clearing: bob.username) == Self.content(export.todos, clearing: bob.username))

            // All or nothing: a bad todo, or a file too large, creates no group.
            func groupCount() async throws -> Int {
                try await pool.query("SELECT count(*)::int AS n FROM group_members WHERE user_id = $1::uuid", carol.userID)[0].decode(Int.self, "n")
            }
            let before = try await groupCount()
            var broken = export.json
            var todos = export.todos
            todos[1]["title"] = ""
            broken["todos"] = todos
            let refused = try await Self.upload(api, carol, try JSONSerialization.data(withJSONObject: broken))
            #expect(refused.status == .badRequest && (refused.json["error"] as? String ?? "").hasPrefix("todos[1].title:"), "\(refused.json)")
            #expect(try await Self.upload(api, carol, Data("{\"format\":".utf8)).status == .badRequest)
            let huge = Data(repeating: UInt8(ascii: " "), count: GroupImport.maxBodyBytes + 1)
            #expect(try await Self.upload(api, carol, huge).status == .contentTooLarge)
            #expect(try await groupCount() == before, "nothing was created")
            #expect(try await Self.upload(api, eve, Data()).status == .badRequest)
            #expect(try await api.client.execute(uri: "/api/v1/groups/import", method: .post, headers: [:], body: ByteBuffer(bytes: export.bytes)) { $0.status } == .unauthorized)
            await pool.shutdown()
        }
    }
}
