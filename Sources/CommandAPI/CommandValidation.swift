import Contracts
import Foundation
import Sharding

/// A client's todo command after every field was checked: what `POST /api/v1/command` publishes
/// once it has added the ids, the actor and the time.
public struct ValidatedCommand: Sendable, Equatable, Encodable, CarriesTodoFields {
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
    /// `set-reminder`: a local time (`LocalTime`) and its IANA zone (nil: the user's profile zone).
    public var remindAt: String?
    public var timezone: String?

    enum CodingKeys: String, CodingKey {
        case action, groupID = "group_id", todoID = "todo_id", title, notes, status, dueDate = "due_date"
        case assignee, labels, position, expectedVersion = "expected_version", remindAt = "remind_at", timezone
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
        try container.encodeIfPresent(remindAt, forKey: .remindAt)
        try container.encodeIfPresent(timezone, forKey: .timezone)
    }

    /// The bus message for this command.
    public func message(commandID: String, todoID: String, actor: (id: String, name: String), issuedAt: Date) -> TodoCommand {
        TodoCommand(
            commandID: commandID, action: action, groupID: groupID.rawValue, todoID: todoID, actorUserID: actor.id,
            actorName: actor.name, issuedAt: issuedAt, title: title, notes: notes, status: status, dueDate: dueDate,
            assignee: assignee, labels: labels, position: position, expectedVersion: expectedVersion,
            remindAt: remindAt, timezone: timezone)
    }
}

/// The rules of `POST /api/v1/command` (issue "command intake" §4). Pure: membership and the
/// assignee's membership are checked afterwards against Postgres.
public enum CommandValidation {
    public static func validate(body: Data) throws(FieldError) -> ValidatedCommand {
        try validate(object: try JSONValue.object(from: body))
    }

    /// The same rules for a command already parsed (`GroupImport` builds one per imported todo).
    static func validate(object: [String: JSONValue]) throws(FieldError) -> ValidatedCommand {
        var fields = FieldReader(object)
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
        // Every todo field the action takes, by its declaration (`TodoField`).
        for field in TodoField.accepted(by: action) {
            command[field] = try read(field, from: &fields, clearable: action == .updateTodo && field.clearable)
        }
        switch action {
        case .createTodo:
            if command.title == nil { throw FieldError(field: "title", "is required") }
        case .updateTodo:
            command.expectedVersion = try expectedVersion(&fields)
            if TodoField.allCases.allSatisfy({ command[$0] == nil }) {
                throw FieldError(field: nil, "update-todo needs at least one of \(TodoField.allCases.map(\.name).joined(separator: ", "))")
            }
        case .moveTodo:
            command.expectedVersion = try expectedVersion(&fields)
            if command.status == nil, command.position == nil {
                throw FieldError(field: nil, "move-todo needs a status or a position")
            }
        case .setReminder:
            let remindAt = try fields.requiredString("remind_at")
            guard let local = LocalTime(remindAt) else {
                throw FieldError(field: "remind_at", "must be a local time like 2026-12-24T09:00 (no zone: see timezone)")
            }
            command.remindAt = local.description
            if let zone = try fields.string("timezone") {
                guard LocalTime.isZone(zone) else { throw FieldError(field: "timezone", "must be an IANA time zone name such as Europe/Berlin or UTC") }
                command.timezone = zone
            }
        case .clearReminder:
            break
        default: // delete-todo, restore-todo
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

    /// Applies a text rule (DESIGN §5) and names the field in the 400 when it fails.
    static func text(_ raw: String, field: String, _ rule: TextRule) throws(FieldError) -> String {
        do { return try rule.normalize(raw) } catch { throw FieldError(field: field, error.description) }
    }

    /// One todo field, read and checked by its declaration; nil when absent. "" stays "" (clear)
    /// only where `clearable`, and is absent otherwise for a date or an assignee.
    static func read(_ field: TodoField, from fields: inout FieldReader, clearable: Bool) throws(FieldError) -> TodoFieldValue? {
        let name = field.name
        switch field.kind {
        case .text(let rule, let trimmed):
            guard let raw = try fields.string(name) else { return nil }
            // Measured as sent (the OpenAPI document's maxLength), stored trimmed.
            var value = try text(raw, field: name, rule)
            if trimmed {
                value = value.trimmingWhitespace()
                guard !value.isEmpty else { throw FieldError(field: name, "must not be empty") }
            }
            return .text(value)
        case .status:
            guard let text = try fields.string(name) else { return nil }
            guard let status = TodoStatus(rawValue: text) else {
                throw FieldError(field: name, "must be one of \(TodoStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return .status(status)
        case .date:
            guard let text = try fields.string(name) else { return nil }
            if text.isEmpty { return clearable ? .text("") : nil }
            guard isISODate(text) else { throw FieldError(field: name, "must be a date like 2026-12-31") }
            return .text(text)
        case .username:
            guard let raw = try fields.string(name) else { return nil }
            if raw.isEmpty { return clearable ? .text("") : nil }
            let username = Username.normalize(raw)
            guard Username.isValid(username) else { throw FieldError(field: name, "is not a valid username") }
            return .text(username)
        case .labels(let rule, let maxCount):
            guard let raw = try fields.stringArray(name) else { return nil }
            guard raw.count <= maxCount else {
                throw FieldError(field: name, "at most \(maxCount) labels are allowed", status: .unprocessable)
            }
            var labels: [String] = []
            for label in raw {
                let trimmed = try text(label, field: name, rule).trimmingWhitespace()
                guard !trimmed.isEmpty else { throw FieldError(field: name, "each label must be 1–\(rule.maxCharacters) characters") }
                if !labels.contains(trimmed) { labels.append(trimmed) }
            }
            return .labels(labels)
        case .number:
            return try fields.number(name).map(TodoFieldValue.number)
        }
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
