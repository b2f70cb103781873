import Contracts
import Foundation
import Testing

/// `TodoField` is the one declaration of a todo's fields: these tests fail when a field exists
/// somewhere it is not declared, or is declared and missing from a codec.
@Suite("Todo fields, declared once")
struct TodoFieldTests {
    /// The properties of commands and events that are not todo fields (the reminder's are a
    /// reminder's, not the todo's).
    static let reminder: Set<String> = ["remindAt", "timezone", "fireAt", "late"]
    static let commandEnvelope: Set<String> = reminder.union(["v", "commandID", "action", "groupID", "todoID", "actorUserID", "actorName",
                                                              "issuedAt", "expectedVersion", "memberUserID", "memberUsername", "role"])
    static let eventEnvelope: Set<String> = reminder.union(["v", "eventID", "commandID", "eventType", "groupID", "todoID", "actorUserID",
                                                            "actorName", "occurredAt", "shardID", "groupVersion", "commandSequence",
                                                            "version", "createdBy", "createdByName", "createdAt", "code", "reason",
                                                            "memberUserID", "memberUsername", "role"])

    static func camelCase(_ name: String) -> String {
        let parts = name.split(separator: "_")
        return String(parts[0]) + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    static let declared = Set(TodoField.allCases.map { camelCase($0.name) })

    @Test func everyTodoPropertyOfCommandsAndEventsIsDeclared() {
        let command = TodoCommand(commandID: "c", action: .createTodo, groupID: "g", actorUserID: "u", actorName: "n", issuedAt: Date())
        let commandFields = Set(Mirror(reflecting: command).children.compactMap(\.label)).subtracting(Self.commandEnvelope)
        #expect(commandFields == Self.declared)
        let event = TodoEvent(eventID: "e", commandID: "c", eventType: .todoCreated, groupID: "g", actorUserID: "u", actorName: "n",
                              occurredAt: Date(), shardID: 0, groupVersion: 1)
        let eventFields = Set(Mirror(reflecting: event).children.compactMap(\.label)).subtracting(Self.eventEnvelope)
        #expect(eventFields == Self.declared)
    }

    static func sample(_ field: TodoField) -> TodoFieldValue {
        switch field.kind {
        case .text: .text("Ünïcode\tvalue")
        case .status: .status(.inProgress)
        case .date: .text("2027-02-28")
        case .username: .text("bob")
        case .labels: .labels(["a", "b"])
        case .number: .number(2.5)
        }
    }

    @Test(arguments: TodoField.allCases)
    func theHandWrittenCodecsCarryEveryDeclaredField(_ field: TodoField) throws {
        var command = TodoCommand(commandID: "c", action: .updateTodo, groupID: "g", todoID: "t", actorUserID: "u", actorName: "n",
                                  issuedAt: Date(timeIntervalSince1970: 1_800_000_000))
        command[field] = Self.sample(field)
        let bytes = command.jsonBytes()
        #expect(String(decoding: bytes, as: UTF8.self).contains("\"\(field.name)\":"))
        #expect(try TodoCommand(json: bytes)[field] == Self.sample(field))
        // The same key through Codable (the contract the hand-written coding must match).
        let decoded = try MessageCoding.decoder().decode(TodoCommand.self, from: Data(bytes))
        #expect(decoded[field] == Self.sample(field))
    }

    @Test func valuesBreakingTheirDeclarationAreNamed() {
        #expect(TodoField.title.problem(with: .text("a\u{0}")) == "title: must not contain control characters (found U+0000)")
        #expect(TodoField.notes.problem(with: .text("two\nlines")) == nil)
        #expect(TodoField.dueDate.problem(with: .text("")) == nil) // clears
        #expect(TodoField.dueDate.problem(with: .text("2026-02-30")) == "due_date: must be a date like 2026-12-31")
        #expect(TodoField.labels.problem(with: .labels(Array(repeating: "x", count: 11))) == "labels: at most 10 labels are allowed")
        #expect(TodoField.position.problem(with: .number(.infinity)) == "position: must be a finite number")
        #expect(TodoField.status.problem(with: .text("done")) == "status: has the wrong type")
        #expect(TodoField.accepted(by: .moveTodo) == [.status, .position])
        #expect(TodoField.accepted(by: .deleteTodo).isEmpty)
    }
}
