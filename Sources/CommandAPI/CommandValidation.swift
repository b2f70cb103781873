import Contracts
import Foundation
import Sharding

/// A client's todo command after every field was checked: what `POST /api/v1/command` publishes
/// once it has added the ids, the actor and the time.
public struct ValidatedCommand: Sendable, Equatable, Encodable {
    public var action: CommandAction
    public var groupID: GroupID
    /// nil only for `create-todo` without a client-chosen id (the server picks one).
    public var todoID: String?
    public var title: String?
    public var notes: String?
    public var status: TodoStatus?
    /// `YYYY-MM-DD`; "" clears it on update.
    public var dueDate: String?
    /// A member's username; "" clears it on update.
    public var assignee: String?
    public var labels: [String]?
    public var position: Double?
    public var expectedVersion: Int64?

    enum CodingKeys: String, CodingKey {
        case action, groupID = "group_id", todoID = "todo_id", title, notes, status, dueDate = "due_date"
        case assignee, labels, position, expectedVersion = "expected_version"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(action, forKey: .action)
        try container.encode(groupID.rawValue, forKey: .groupID)
        try container.encodeIfPresent(todoID, forKey: .todoID)
        try container.encodeIfPresent(title, forKey: .title)
        try container.encodeIfPresent(notes, forKey: .notes)
        try container.encodeIfPresent(status, forKey: .status)
        try container.encodeIfPresent(dueDate, forKey: .dueDate)
        try container.encodeIfPresent(assignee, forKey: .assignee)
        try container.encodeIfPresent(labels, forKey: .labels)
        try container.encodeIfPresent(position, forKey: .position)
        try container.encodeIfPresent(expectedVersion, forKey: .expectedVersion)
    }

    /// The bus message for this command.
    public func message(commandID: String, todoID: String, actor: (id: String, name: String), issuedAt: Date) -> TodoCommand {
        TodoCommand(
            commandID: commandID, action: action, groupID: groupID.rawValue, todoID: todoID, actorUserID: actor.id,
            actorName: actor.name, issuedAt: issuedAt, title: title, notes: notes, status: status, dueDate: dueDate,
            assignee: assignee, labels: labels, position: position, expectedVersion: expectedVersion)
    }
}

/// The rules of `POST /api/v1/command` (issue "command intake" §4). Pure: membership and the
/// assignee's membership are checked afterwards against Postgres.
public enum CommandValidation {
    public static let maxTitle = TextRules.title.maxCharacters
    public static let maxNotes = TextRules.notes.maxCharacters
    public static let maxLabels = TextRules.maxLabelsPerTodo
    public static let maxLabel = TextRules.label.maxCharacters

    public static func validate(body: Data) throws(FieldError) -> ValidatedCommand {
        var fields = FieldReader(try JSONValue.object(from: body))
        let actionName = try fields.requiredString("action")
        guard let action = CommandAction(rawValue: actionName), action.isClientAction else {
            let known = CommandAction.allCases.filter(\.isClientAction).map(\.rawValue).joined(separator: ", ")
            throw FieldError(field: "action", "unknown action \(actionName.debugDescription); expected one of \(known)")
        }
        let groupText = try fields.requiredString("group_id")
        let groupID: GroupID
        do { groupID = try GroupID(groupText) } catch { throw FieldError(field: "group_id", error.description) }

        var command = ValidatedCommand(action: action, groupID: groupID)
        command.todoID = try todoID(&fields, required: action != .createTodo)

        switch action {
        case .createTodo:
            command.title = try title(&fields, required: true)
            command.notes = try notes(&fields)
            command.status = try status(&fields)
            command.dueDate = try dueDate(&fields, allowClear: false)
            command.assignee = try assignee(&fields, allowClear: false)
            command.labels = try labels(&fields)
            command.position = try fields.number("position")
        case .updateTodo:
            command.title = try title(&fields, required: false)
            command.notes = try notes(&fields)
            command.status = try status(&fields)
            command.dueDate = try dueDate(&fields, allowClear: true)
            command.assignee = try assignee(&fields, allowClear: true)
            command.labels = try labels(&fields)
            command.position = try fields.number("position")
            command.expectedVersion = try expectedVersion(&fields)
            if command.title == nil, command.notes == nil, command.status == nil, command.dueDate == nil,
               command.assignee == nil, command.labels == nil, command.position == nil {
                throw FieldError(field: nil, "update-todo needs at least one of title, notes, status, due_date, assignee, labels, position")
            }
        case .moveTodo:
            command.status = try status(&fields)
            command.position = try fields.number("position")
            command.expectedVersion = try expectedVersion(&fields)
            if command.status == nil, command.position == nil {
                throw FieldError(field: nil, "move-todo needs a status or a position")
            }
        default: // delete-todo
            command.expectedVersion = try expectedVersion(&fields)
        }
        try fields.rejectUnknown(context: action.rawValue)
        return command
    }

    /// Todo ids become HTML ids and JSON keys: letters, digits, `_` and `-`, at most 128.
    public static func isValidTodoID(_ id: String) -> Bool {
        TextRules.isValidID(id)
    }

    private static func todoID(_ fields: inout FieldReader, required: Bool) throws(FieldError) -> String? {
        guard let id = try fields.string("todo_id") else {
            if required { throw FieldError(field: "todo_id", "is required") }
            return nil
        }
        guard isValidTodoID(id) else { throw FieldError(field: "todo_id", "must be 1–128 letters, digits, '_' or '-'") }
        return id
    }

    private static func title(_ fields: inout FieldReader, required: Bool) throws(FieldError) -> String? {
        guard let raw = try fields.string("title") else {
            if required { throw FieldError(field: "title", "is required") }
            return nil
        }
        // Measured as sent (the OpenAPI document's maxLength), stored trimmed.
        let title = try text(raw, field: "title", TextRules.title).trimmingWhitespace()
        guard !title.isEmpty else { throw FieldError(field: "title", "must not be empty") }
        return title
    }

    private static func notes(_ fields: inout FieldReader) throws(FieldError) -> String? {
        guard let notes = try fields.string("notes") else { return nil }
        return try text(notes, field: "notes", TextRules.notes)
    }

    /// Applies a text rule (DESIGN §5) and names the field in the 400 when it fails.
    static func text(_ raw: String, field: String, _ rule: TextRule) throws(FieldError) -> String {
        do { return try rule.normalize(raw) } catch { throw FieldError(field: field, error.description) }
    }

    private static func status(_ fields: inout FieldReader) throws(FieldError) -> TodoStatus? {
        guard let text = try fields.string("status") else { return nil }
        guard let status = TodoStatus(rawValue: text) else {
            throw FieldError(field: "status", "must be one of todo, in_progress, done")
        }
        return status
    }

    private static func dueDate(_ fields: inout FieldReader, allowClear: Bool) throws(FieldError) -> String? {
        guard let text = try fields.string("due_date") else { return nil }
        if text.isEmpty {
            if allowClear { return "" }
            return nil
        }
        guard isISODate(text) else { throw FieldError(field: "due_date", "must be a date like 2026-12-31") }
        return text
    }

    private static func assignee(_ fields: inout FieldReader, allowClear: Bool) throws(FieldError) -> String? {
        guard let raw = try fields.string("assignee") else { return nil }
        let name = Username.normalize(raw)
        if raw.isEmpty { return allowClear ? "" : nil }
        guard Username.isValid(name) else { throw FieldError(field: "assignee", "is not a valid username") }
        return name
    }

    private static func labels(_ fields: inout FieldReader) throws(FieldError) -> [String]? {
        guard let raw = try fields.stringArray("labels") else { return nil }
        guard raw.count <= maxLabels else {
            throw FieldError(field: "labels", "at most \(maxLabels) labels are allowed", status: .unprocessable)
        }
        var labels: [String] = []
        for label in raw {
            let trimmed = try text(label, field: "labels", TextRules.label).trimmingWhitespace()
            guard !trimmed.isEmpty else { throw FieldError(field: "labels", "each label must be 1–\(maxLabel) characters") }
            if !labels.contains(trimmed) { labels.append(trimmed) }
        }
        return labels
    }

    private static func expectedVersion(_ fields: inout FieldReader) throws(FieldError) -> Int64? {
        guard let number = try fields.number("expected_version") else { return nil }
        guard number >= 1, number <= 9_007_199_254_740_991, number.rounded() == number else {
            throw FieldError(field: "expected_version", "must be a whole number of at least 1")
        }
        return Int64(number)
    }

    /// `YYYY-MM-DD` naming a real calendar day.
    static func isISODate(_ text: String) -> Bool {
        TextRules.isISODate(text)
    }
}

/// Usernames: 3–32 characters of `[a-z0-9_.-]`; input is lower-cased first, so they are unique
/// case-insensitively.
public enum Username {
    /// Trims spaces and tabs and lower-cases ASCII letters only (Unicode lower-casing would turn
    /// the Kelvin sign into "k", so a name the rules refuse could become one they accept).
    public static func normalize(_ raw: String) -> String {
        var bytes = Array(raw.utf8)
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
        let start = bytes.firstIndex { $0 != 0x20 && $0 != 0x09 } ?? bytes.endIndex
        return String(decoding: bytes[start...].map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    public static func isValid(_ name: String) -> Bool {
        TextRules.isValidUsername(name)
    }
}
