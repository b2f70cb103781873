import Contracts
import Foundation
import HTTPAPI
import Sharding
import Testing
@testable import CommandAPI

/// The rules of `POST /api/v1/groups/import` (DESIGN §10), before anything is written.
@Suite("Group import")
struct GroupImportTests {
    static let group = try! GroupID("01a25184-1c6a-7f7b-a2b5-2b8c0bde3826")

    static func document(todos: [[String: Any]], name: String = "Launch", format: String = "teamboard-export") -> Data {
        try! JSONSerialization.data(withJSONObject: [
            "format": format, "format_version": 1, "exported_at": "2026-12-07T10:00:00Z",
            "group": ["group_id": "old", "name": name, "group_version": 9],
            "members": [["user_id": "u", "username": "alice", "role": "owner"]],
            "todos": todos, "events": [["event_type": "todo.created"]],
        ] as [String: Any])
    }

    static func plan(_ body: Data, todosPerGroup: Int = 50_000) throws(APIError) -> GroupImport.Plan {
        var limits = GrowthLimits()
        limits.todosPerGroup = todosPerGroup
        return try GroupImport.plan(body, group: group, importer: "alice", limits: limits)
    }

    static func refusal(_ body: Data, todosPerGroup: Int = 50_000) -> APIError? {
        do {
            _ = try plan(body, todosPerGroup: todosPerGroup)
            return nil
        } catch {
            return error
        }
    }

    @Test func takesEachTodoAsACreateInOrderAndClearsOthersAssignees() throws {
        let plan = try Self.plan(Self.document(todos: [
            ["todo_id": "t-1", "title": "  First ", "notes": "a, \"b\"\nc", "status": "done", "position": 2.5,
             "due_date": "2026-12-24", "labels": ["x", "y"], "assignee": "alice", "version": 7, "created_by": "someone",
             "created_by_name": "bob"],
            ["title": "Second", "assignee": "bob", "due_date": NSNull()],
        ]))
        #expect(plan.name == "Launch" && plan.assigneesCleared == 1)
        #expect(plan.todos.count == 2)
        let first = plan.todos[0]
        #expect(first.action == .createTodo && first.groupID == Self.group && first.todoID == "t-1")
        #expect(first.title == "First" && first.notes == "a, \"b\"\nc" && first.status == .done && first.position == 2.5)
        #expect(first.dueDate == "2026-12-24" && first.labels == ["x", "y"] && first.assignee == "alice")
        #expect(plan.todos[1].todoID?.isEmpty == false && plan.todos[1].assignee == nil, "a new id; bob is not in the new group")
    }

    @Test func refusesAMalformedDocumentNamingWhere() {
        let cases: [(Data, String)] = [
            (Data("{".utf8), "not a JSON object"),
            (Data("[]".utf8), "not a JSON object"),
            (Self.document(todos: [], format: "trello"), "format:"),
            (Self.document(todos: [], name: "   "), "group.name:"),
            (Self.document(todos: [["title": "ok"], ["title": ""]]), "todos[1].title:"),
            (Self.document(todos: [["title": "ok", "status": "later"]]), "todos[0].status:"),
            (Self.document(todos: [["title": "ok", "todo_id": "has space"]]), "todos[0].todo_id:"),
            (Self.document(todos: [["title": "a", "todo_id": "t"], ["title": "b", "todo_id": "t"]]), "todos[1].todo_id: t appears twice"),
            (Self.document(todos: [["title": "ok", "labels": Array(repeating: "l", count: 11).enumerated().map { "l\($0.offset)" }]]), "todos[0].labels:"),
            (Self.document(todos: [["title": "a\u{0007}"]]), "todos[0].title:"),
            (Data(#"{"format":"teamboard-export","format_version":2,"group":{"name":"x"},"todos":[]}"#.utf8), "format_version:"),
            (Data(#"{"format":"teamboard-export","format_version":1,"group":{"name":"x"},"todos":{}}"#.utf8), "todos: must be an array"),
            (Data(#"{"format":"teamboard-export","format_version":1,"group":{"name":"x"},"todos":[1]}"#.utf8), "todos[0]: must be an object"),
        ]
        for (body, expected) in cases {
            let refusal = Self.refusal(body)
            #expect(refusal?.status == .badRequest && refusal?.message.contains(expected) == true, "\(expected): \(String(describing: refusal))")
        }
    }

    @Test func readsPastTheHistoryAndTheMembersButStillChecksThem() throws {
        let events = "[" + Array(repeating: "{\"event_type\":\"todo.created\",\"group_version\":1}", count: 50_000).joined(separator: ",") + "]"
        let body = #"{"format":"teamboard-export","format_version":1,"group":{"name":"x"},"todos":[{"title":"a"}],"members":[1,2],"events":"#
            + events + "}"
        #expect(try Self.plan(Data(body.utf8)).todos.count == 1)
        for broken in [#"{"format":"teamboard-export","format_version":1,"group":{"name":"x"},"todos":[],"events":[1,}"#,
                       #"{"format":"teamboard-export","format_version":1,"group":{"name":"x"},"todos":[],"events":[],"events":[]}"#,
                       #"{"format":"teamboard-export","format_version":1,"group":{"name":"x"},"todos":[],"todos":[]}"#] {
            #expect(Self.refusal(Data(broken.utf8))?.status == .badRequest, "\(broken)")
        }
    }

    @Test func refusesMoreTodosThanAGroupHoldsWith413() {
        let refusal = Self.refusal(Self.document(todos: (0..<3).map { ["title": "t\($0)"] }), todosPerGroup: 2)
        #expect(refusal?.status == .contentTooLarge && refusal?.message.contains("at most 2") == true)
    }
}
