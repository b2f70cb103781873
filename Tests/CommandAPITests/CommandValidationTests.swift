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
        (#"{"action":"restore-todo","group_id":"g"}"#, "todo_id"),
        (#"{"action":"restore-todo","group_id":"g","todo_id":"t","title":"x"}"#, "title"),
        (#"{"action":"restore-todo","group_id":"g","todo_id":"t","expected_version":0}"#, "expected_version"),
        (#"{"action":"set-reminder","group_id":"g","todo_id":"t"}"#, "remind_at"),
        (#"{"action":"set-reminder","group_id":"g","todo_id":"t","remind_at":"2026-12-24T25:00"}"#, "remind_at"),
        (#"{"action":"set-reminder","group_id":"g","todo_id":"t","remind_at":"2026-12-24T09:00Z"}"#, "remind_at"),
        (#"{"action":"set-reminder","group_id":"g","todo_id":"t","remind_at":"2026-12-24T09:00","timezone":"CEST+2"}"#, "timezone"),
        (#"{"action":"set-reminder","group_id":"g","todo_id":"t","remind_at":"2026-12-24T09:00","title":"x"}"#, "title"),
        (#"{"action":"clear-reminder","group_id":"g","todo_id":"t","remind_at":"2026-12-24T09:00"}"#, "remind_at"),
        (#"{"action":"fire-reminder","group_id":"g","todo_id":"t"}"#, "action"),
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

    @Test(arguments: [
        (#"{"action":"create-todo","group_id":"g","title":"a\u0000b"}"#, "title"),
        (#"{"action":"create-todo","group_id":"g","title":"a\nb"}"#, "title"),
        (#"{"action":"create-todo","group_id":"g","title":"x","notes":"a\u0000b"}"#, "notes"),
        (#"{"action":"create-todo","group_id":"g","title":"x","notes":"a\u001bb"}"#, "notes"),
        (#"{"action":"create-todo","group_id":"g","title":"x","labels":["\u0000"]}"#, "labels"),
        (#"{"action":"create-todo","group_id":"g","title":"x","labels":["a\tb"]}"#, "labels"),
        (#"{"action":"create-todo","group_id":"g","title":"x","assignee":"bo\u0000b"}"#, "assignee"),
        (#"{"action":"create-todo","group_id":"g","title":"x","todo_id":"t\u0000"}"#, "todo_id"),
        (#"{"action":"create-todo","group_id":"g\u0000","title":"x"}"#, "group_id"),
        (#"{"action":"create-todo","group_id":"g","title":"\u0085"}"#, "title"),
    ])
    func controlCharactersAreRefusedNamingTheField(_ json: String, _ field: String) {
        #expect(rejectedField(json) == field, "\(json)")
    }

    @Test func textIsNormalizedBeforeItIsMeasured() throws {
        // Decomposed "é" (e + U+0301) is stored composed; 200 of them are 200 characters.
        let decomposed = String(repeating: "e\u{301}", count: 200)
        let command = try validate(#"{"action":"create-todo","group_id":"g","title":"\#(decomposed)","notes":"a\r\nb"}"#)
        #expect(command.title == String(repeating: "\u{E9}", count: 200))
        #expect(command.title?.unicodeScalars.count == 200)
        #expect(command.notes == "a\nb")
        // One character of 1,000 bytes fits the character limit, not the byte limit.
        let stacked = "a" + String(repeating: "\u{301}", count: 500)
        #expect(rejectedField(#"{"action":"create-todo","group_id":"g","title":"\#(stacked)"}"#) == "title")
    }

    @Test func tooManyLabelsIsACapNotMalformedInput() {
        let eleven = (0..<11).map { "\"l\($0)\"" }.joined(separator: ",")
        do {
            _ = try validate(#"{"action":"create-todo","group_id":"g","title":"x","labels":[\#(eleven)]}"#)
            Issue.record("eleven labels were accepted")
        } catch {
            #expect(error.status == .unprocessable)
        }
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

    @Test func idempotentIDsDependOnUserKeyGroupAndRequest() {
        let user = UUID()
        let hash = Data([1, 2, 3])
        func ids(user: UUID = user, key: String = "k", group: String = "g1", hash: Data = hash, todoID: String? = nil) -> (command: String, todo: String) {
            CommandIntake.derivedIDs(user: user, key: key, group: group, requestHash: hash, todoID: todoID)
        }
        let first = ids()
        #expect(first == ids())
        #expect(first.command != ids(key: "k2").command)
        #expect(first.command != ids(user: UUID()).command)
        // A key reused in another group, or for another body, is another command (and todo).
        #expect(first.command != ids(group: "g2").command)
        #expect(first.todo != ids(group: "g2").todo)
        #expect(first.command != ids(hash: Data([1, 2, 4])).command)
        #expect(first.command != first.todo)
        #expect(UUID(uuidString: first.command) != nil)
        #expect(ids(todoID: "mine").todo == "mine")
    }

    @Test func idempotencyKeysArePrintableASCII() {
        #expect(CommandIntake.isValidIdempotencyKey("0b8f-retry_1"))
        #expect(!CommandIntake.isValidIdempotencyKey(""))
        #expect(!CommandIntake.isValidIdempotencyKey("a b"))
        #expect(!CommandIntake.isValidIdempotencyKey("a\u{0}b"))
        #expect(!CommandIntake.isValidIdempotencyKey("clé"))
        #expect(!CommandIntake.isValidIdempotencyKey(String(repeating: "k", count: 201)))
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
