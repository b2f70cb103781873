import Contracts
import Foundation
import Testing
@testable import CommandAPI

@Suite("Command validation")
struct CommandValidationTests {
    let group = "g-1"

    func validate(_ json: String) throws(FieldError) -> ValidatedCommand {
        try CommandValidation.validate(body: Data(json.utf8))
    }

    /// The field a rejected body names ("" for problems of the whole body).
    func rejectedField(_ json: String) -> String? {
        do {
            _ = try validate(json)
            return nil
        } catch {
            return error.field ?? ""
        }
    }

    @Test func validCreateKeepsEveryField() throws {
        let command = try validate("""
            {"action":"create-todo","group_id":"g-1","todo_id":"t_1","title":"  Ship it  ","notes":"n","status":"in_progress",
             "due_date":"2028-02-29","assignee":"Bob","labels":["a"," b ","a"],"position":2.5}
            """)
        #expect(command.action == .createTodo)
        #expect(command.groupID.rawValue == "g-1")
        #expect(command.todoID == "t_1")
        #expect(command.title == "Ship it")
        #expect(command.status == .inProgress)
        #expect(command.dueDate == "2028-02-29")
        #expect(command.assignee == "bob")
        #expect(command.labels == ["a", "b"])
        #expect(command.position == 2.5)
    }

    @Test func createWithoutTodoIDLeavesItToTheServer() throws {
        #expect(try validate(#"{"action":"create-todo","group_id":"g","title":"x"}"#).todoID == nil)
    }

    @Test(arguments: [
        (#"{"group_id":"g","title":"x"}"#, "action"),
        (#"{"action":"fly","group_id":"g"}"#, "action"),
        (#"{"action":"add-member","group_id":"g"}"#, "action"), // membership goes through the group routes
        (#"{"action":"create-todo","title":"x"}"#, "group_id"),
        (#"{"action":"create-todo","group_id":"a.b","title":"x"}"#, "group_id"),
        (#"{"action":"create-todo","group_id":"g"}"#, "title"),
        (#"{"action":"create-todo","group_id":"g","title":"   "}"#, "title"),
        (#"{"action":"create-todo","group_id":"g","title":7}"#, "title"),
        (#"{"action":"create-todo","group_id":"g","title":"x","status":"doing"}"#, "status"),
        (#"{"action":"create-todo","group_id":"g","title":"x","due_date":"2027-02-29"}"#, "due_date"),
        (#"{"action":"create-todo","group_id":"g","title":"x","due_date":"tomorrow"}"#, "due_date"),
        (#"{"action":"create-todo","group_id":"g","title":"x","assignee":"No Spaces"}"#, "assignee"),
        (#"{"action":"create-todo","group_id":"g","title":"x","labels":"a"}"#, "labels"),
        (#"{"action":"create-todo","group_id":"g","title":"x","labels":[""]}"#, "labels"),
        (#"{"action":"create-todo","group_id":"g","title":"x","labels":[1]}"#, "labels"),
        (#"{"action":"create-todo","group_id":"g","title":"x","position":"1"}"#, "position"),
        (#"{"action":"create-todo","group_id":"g","title":"x","todo_id":"has space"}"#, "todo_id"),
        (#"{"action":"create-todo","group_id":"g","title":"x","expected_version":1}"#, "expected_version"), // not for create
        (#"{"action":"create-todo","group_id":"g","title":"x","colour":"red"}"#, "colour"),
        (#"{"action":"update-todo","group_id":"g","title":"x"}"#, "todo_id"),
        (#"{"action":"update-todo","group_id":"g","todo_id":"t"}"#, ""),
        (#"{"action":"update-todo","group_id":"g","todo_id":"t","title":"x","expected_version":0}"#, "expected_version"),
        (#"{"action":"update-todo","group_id":"g","todo_id":"t","title":"x","expected_version":1.5}"#, "expected_version"),
        (#"{"action":"move-todo","group_id":"g","todo_id":"t"}"#, ""),
        (#"{"action":"move-todo","group_id":"g","todo_id":"t","status":"done","title":"x"}"#, "title"),
        (#"{"action":"delete-todo","group_id":"g","todo_id":"t","status":"done"}"#, "status"),
        (#"[1,2]"#, ""),
        (#"{"action":"#, ""),
        ("", ""),
    ])
    func rejectsNamingTheField(_ json: String, _ field: String) {
        #expect(rejectedField(json) == field, "\(json)")
    }

    @Test func titleNotesAndLabelsHaveLimits() {
        let title201 = String(repeating: "é", count: 201)
        #expect(rejectedField(#"{"action":"create-todo","group_id":"g","title":"\#(title201)"}"#) == "title")
        #expect(rejectedField(#"{"action":"create-todo","group_id":"g","title":"\#(String(title201.dropLast()))"}"#) == nil)
        let notes = String(repeating: "n", count: 4001)
        #expect(rejectedField(#"{"action":"create-todo","group_id":"g","title":"x","notes":"\#(notes)"}"#) == "notes")
        let eleven = (0..<11).map { "\"l\($0)\"" }.joined(separator: ",")
        #expect(rejectedField(#"{"action":"create-todo","group_id":"g","title":"x","labels":[\#(eleven)]}"#) == "labels")
        let long = String(repeating: "l", count: 33)
        #expect(rejectedField(#"{"action":"create-todo","group_id":"g","title":"x","labels":["\#(long)"]}"#) == "labels")
    }

    @Test func updateMayClearDueDateAndAssignee() throws {
        let command = try validate(#"{"action":"update-todo","group_id":"g","todo_id":"t","due_date":"","assignee":""}"#)
        #expect(command.dueDate == "")
        #expect(command.assignee == "")
    }

    @Test func nullCountsAsAbsent() throws {
        let command = try validate(#"{"action":"move-todo","group_id":"g","todo_id":"t","status":"done","position":null}"#)
        #expect(command.position == nil)
        #expect(command.status == .done)
    }

    @Test func isoDates() {
        #expect(CommandValidation.isISODate("2024-02-29"))
        #expect(!CommandValidation.isISODate("2100-02-29"))
        #expect(CommandValidation.isISODate("2000-02-29"))
        #expect(!CommandValidation.isISODate("2024-13-01"))
        #expect(!CommandValidation.isISODate("2024-1-01"))
        #expect(!CommandValidation.isISODate("2024-04-31"))
    }

    @Test func usernames() {
        #expect(Username.isValid("a_b.c-9"))
        #expect(!Username.isValid("ab"))
        #expect(!Username.isValid(String(repeating: "a", count: 33)))
        #expect(!Username.isValid("Alice"))
        #expect(Username.normalize(" Alice ") == "alice")
    }

    @Test func idempotentIDsDependOnUserAndKey() {
        let user = UUID()
        let first = CommandIntake.derivedIDs(user: user, key: "k", todoID: nil)
        #expect(first == CommandIntake.derivedIDs(user: user, key: "k", todoID: nil))
        #expect(first.command != CommandIntake.derivedIDs(user: user, key: "k2", todoID: nil).command)
        #expect(first.command != CommandIntake.derivedIDs(user: UUID(), key: "k", todoID: nil).command)
        #expect(first.command != first.todo)
        #expect(UUID(uuidString: first.command) != nil)
        #expect(CommandIntake.derivedIDs(user: user, key: "k", todoID: "mine").todo == "mine")
    }

    @Test func acceptedAnswerBytesEqualTheEncodersOutput() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for answer in [AcceptedCommand(commandID: "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", todoID: "t_1-x", shard: 17),
                       AcceptedCommand(commandID: "c/\"1", todoID: nil, shard: 0)] {
            #expect(answer.jsonBytes() == Array(try encoder.encode(answer)))
        }
    }
}
