import Foundation
import Testing
@testable import Contracts

@Suite("Bus message JSON")
struct MessageCodingTests {
    let issued = Date(timeIntervalSince1970: 1_795_000_000.125)

    @Test func commandUsesSnakeCaseAndSchemaVersion() throws {
        let command = TodoCommand(
            commandID: "c-1", action: .createTodo, groupID: "g-1", todoID: "t-1",
            actorUserID: "u-1", actorName: "alice", issuedAt: issued, title: "Write docs",
            status: .inProgress, dueDate: "2026-12-01", labels: ["docs"], position: 1.5,
            expectedVersion: 3)
        let json = try JSONSerialization.jsonObject(with: MessageCoding.encoder().encode(command)) as! [String: Any]
        #expect(json["v"] as? Int == 1)
        #expect(json["command_id"] as? String == "c-1")
        #expect(json["action"] as? String == "create-todo")
        #expect(json["group_id"] as? String == "g-1")
        #expect(json["actor_user_id"] as? String == "u-1")
        #expect(json["status"] as? String == "in_progress")
        #expect(json["due_date"] as? String == "2026-12-01")
        #expect(json["expected_version"] as? Int == 3)
        #expect(json["issued_at"] as? String == "2026-11-18T11:06:40.125Z")
        #expect(json["notes"] == nil, "nil fields are left out")
        let decoded = try MessageCoding.decoder().decode(TodoCommand.self, from: MessageCoding.encoder().encode(command))
        #expect(decoded == command)
    }

    @Test func eventRoundTripsWithEveryField() throws {
        let event = TodoEvent(
            eventID: EventID.derive(fromCommandID: "c-9"), commandID: "c-9", eventType: .commandRejected,
            groupID: "g", todoID: "t", actorUserID: "u", actorName: "bob", occurredAt: issued,
            shardID: 17, groupVersion: 42, code: "not_allowed", reason: "only the creator may edit")
        let data = try MessageCoding.encoder().encode(event)
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        #expect(json["event_type"] as? String == "command.rejected")
        #expect(json["group_version"] as? Int == 42)
        #expect(json["shard_id"] as? Int == 17)
        #expect(try MessageCoding.decoder().decode(TodoEvent.self, from: data) == event)
    }

    @Test func decodesTimestampsWithoutFractionalSeconds() throws {
        let json = #"{"v":1,"command_id":"c","action":"delete-todo","group_id":"g","todo_id":"t","actor_user_id":"u","actor_name":"n","issued_at":"2026-11-21T10:00:00Z"}"#
        let command = try MessageCoding.decoder().decode(TodoCommand.self, from: Data(json.utf8))
        #expect(command.issuedAt == Date(timeIntervalSince1970: 1_795_255_200))
    }

    @Test func rejectsUnknownActions() {
        let json = #"{"v":1,"command_id":"c","action":"drop-table","group_id":"g","actor_user_id":"u","actor_name":"n","issued_at":"2026-11-21T10:00:00Z"}"#
        #expect(throws: DecodingError.self) {
            try MessageCoding.decoder().decode(TodoCommand.self, from: Data(json.utf8))
        }
    }

    @Test func eventIDIsAPureFunctionOfTheCommandID() {
        #expect(EventID.derive(fromCommandID: "abc") == EventID.derive(fromCommandID: "abc"))
        #expect(EventID.derive(fromCommandID: "abc") != EventID.derive(fromCommandID: "abd"))
    }

    @Test func clientActionsAreTheTodoActions() {
        #expect(CommandAction.allCases.filter(\.isClientAction)
                == [.createTodo, .updateTodo, .moveTodo, .deleteTodo, .restoreTodo, .setReminder, .clearReminder])
    }

    @Test func rolesAreOrdered() {
        #expect(GroupRole.member < .admin && GroupRole.admin < .owner)
    }
}
