/// A todo's fields, declared once: the JSON key (in commands, events and the HTTP API, and the
/// column of the sink's staging table and of `todos`), the kind of value with its limits, and
/// whether an update may clear it with "". What reads this:
///
/// - command-api's validation (`CommandValidation`) reads each field of a todo command by it;
/// - the engine's re-check (`TodoCommand.textProblem`) checks each field by it;
/// - the sink's staging table (`ProjectionWriter`) takes its columns and types from it;
/// - tests hold the OpenAPI document's command schemas and the hand-written codecs to it
///   (`TodoFieldTests`, `OpenAPILimitsTests`), so a field added here and nowhere else fails them.
///
/// Adding a field: a case here, its property on `TodoCommand`/`TodoEvent` (the compiler then
/// asks for it in every `switch` over `TodoField`), its key in the hand-written codecs and the
/// OpenAPI document (the tests say where), and a migration for the `todos` column.
public enum TodoField: String, CaseIterable, Sendable {
    case title, notes, status
    case dueDate = "due_date"
    case assignee, labels, position

    /// JSON key and column name.
    public var name: String { rawValue }

    public enum Kind: Sendable, Equatable {
        /// Text under a rule; `trimmed` text is stored without surrounding white space and must
        /// not be empty then.
        case text(TextRule, trimmed: Bool)
        /// One of `TodoStatus`.
        case status
        /// `YYYY-MM-DD`, a real day.
        case date
        /// A group member's username.
        case username
        /// Up to `maxCount` distinct labels, each a trimmed, non-empty text under `rule`.
        case labels(TextRule, maxCount: Int)
        /// A finite number.
        case number
    }

    public var kind: Kind {
        switch self {
        case .title: .text(TextRules.title, trimmed: true)
        case .notes: .text(TextRules.notes, trimmed: false)
        case .status: .status
        case .dueDate: .date
        case .assignee: .username
        case .labels: .labels(TextRules.label, maxCount: TextRules.maxLabelsPerTodo)
        case .position: .number
        }
    }

    /// On update, "" clears the field (it is optional on a todo).
    public var clearable: Bool { self == .dueDate || self == .assignee }

    /// The column type in the sink's staging table (binary COPY writes this type).
    public var stagingType: String {
        switch self {
        case .title, .notes, .status, .dueDate, .assignee: "text"
        case .labels: "text[]"
        case .position: "double precision"
        }
    }

    /// The fields a command of `action` may carry (create and update: all; move: where to).
    public static func accepted(by action: CommandAction) -> [TodoField] {
        switch action {
        case .createTodo, .updateTodo: allCases
        case .moveTodo: [.status, .position]
        default: []
        }
    }
}

/// A todo field's value, as commands and events carry it.
public enum TodoFieldValue: Sendable, Equatable {
    case text(String)
    case status(TodoStatus)
    case labels([String])
    case number(Double)
}

extension TodoField {
    /// Why `value` is not in the form this field stores (nil: it is), naming the field, never
    /// echoing the value. "" passes for a clearable field.
    public func problem(with value: TodoFieldValue) -> String? {
        switch (kind, value) {
        case (.text(let rule, _), .text(let text)):
            return rule.storedFormProblem(text).map { "\(name): \($0)" }
        case (.status, .status):
            return nil
        case (.date, .text(let text)):
            return text.isEmpty || TextRules.isISODate(text) ? nil : "\(name): must be a date like 2026-12-31"
        case (.username, .text(let text)):
            return text.isEmpty || TextRules.isValidUsername(text) ? nil : "\(name): is not a valid username"
        case (.labels(let rule, let maxCount), .labels(let labels)):
            if labels.count > maxCount { return "\(name): at most \(maxCount) labels are allowed" }
            return labels.lazy.compactMap { rule.storedFormProblem($0) }.first.map { "\(name): \($0)" }
        case (.number, .number(let number)):
            return number.isFinite ? nil : "\(name): must be a finite number"
        default:
            return "\(name): has the wrong type"
        }
    }
}

/// A message that carries a todo's fields (commands, events, command-api's validated command),
/// readable and writable by their declaration.
public protocol CarriesTodoFields {
    var title: String? { get set }
    var notes: String? { get set }
    var status: TodoStatus? { get set }
    var dueDate: String? { get set }
    var assignee: String? { get set }
    var labels: [String]? { get set }
    var position: Double? { get set }
}

extension CarriesTodoFields {
    /// The value of a todo field (nil: absent).
    public subscript(field: TodoField) -> TodoFieldValue? {
        get {
            switch field {
            case .title: title.map(TodoFieldValue.text)
            case .notes: notes.map(TodoFieldValue.text)
            case .status: status.map(TodoFieldValue.status)
            case .dueDate: dueDate.map(TodoFieldValue.text)
            case .assignee: assignee.map(TodoFieldValue.text)
            case .labels: labels.map(TodoFieldValue.labels)
            case .position: position.map(TodoFieldValue.number)
            }
        }
        set {
            switch field {
            case .title: title = newValue?.text
            case .notes: notes = newValue?.text
            case .status: status = newValue?.status
            case .dueDate: dueDate = newValue?.text
            case .assignee: assignee = newValue?.text
            case .labels: labels = newValue?.labels
            case .position: position = newValue?.number
            }
        }
    }
}

extension TodoCommand: CarriesTodoFields {}
extension TodoEvent: CarriesTodoFields {}

extension TodoFieldValue {
    public var text: String? { if case .text(let text) = self { text } else { nil } }
    public var status: TodoStatus? { if case .status(let status) = self { status } else { nil } }
    public var labels: [String]? { if case .labels(let labels) = self { labels } else { nil } }
    public var number: Double? { if case .number(let number) = self { number } else { nil } }
}
