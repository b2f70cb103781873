import Contracts
import Foundation
import NIOCore

/// The HTML of the board's pieces, shared by the pages and the live patches, so a card looks the
/// same whether it came with the page or over SSE. All user text is escaped.
public enum BoardFragments {
    public struct Card: Sendable {
        public var todoID: String
        public var title: String
        public var notes: String
        public var status: TodoStatus
        public var position: Double
        public var dueDate: String?
        public var assignee: String?
        public var labels: [String]
        public var createdBy: String
        public var createdByName: String
        public var version: Int64

        public init(todoID: String, title: String, notes: String, status: TodoStatus, position: Double, dueDate: String?,
                    assignee: String?, labels: [String], createdBy: String, createdByName: String, version: Int64) {
            self.todoID = todoID
            self.title = title
            self.notes = notes
            self.status = status
            self.position = position
            self.dueDate = dueDate
            self.assignee = assignee
            self.labels = labels
            self.createdBy = createdBy
            self.createdByName = createdByName
            self.version = version
        }

        public init(_ todo: ReadStore.Todo) {
            self.init(todoID: todo.todoID, title: todo.title, notes: todo.notes, status: todo.status, position: todo.position,
                      dueDate: todo.dueDate, assignee: todo.assignee, labels: todo.labels, createdBy: todo.createdBy,
                      createdByName: todo.createdByName, version: todo.version)
        }

        /// The card a todo event leaves behind (events carry the todo's full state).
        public init?(_ event: TodoEvent) {
            guard let todoID = event.todoID, let title = event.title, let status = event.status else { return nil }
            self.init(todoID: todoID, title: title, notes: event.notes ?? "", status: status, position: event.position ?? 0,
                      dueDate: event.dueDate, assignee: event.assignee, labels: event.labels ?? [],
                      createdBy: event.createdBy ?? event.actorUserID, createdByName: event.createdByName ?? event.actorName,
                      version: event.version ?? 1)
        }
    }

    public static func cardID(_ todoID: String) -> String { "todo-\(todoID)" }
    public static func columnID(_ status: TodoStatus) -> String { "cards-\(status.rawValue)" }

    public static func card(_ card: Card) -> String {
        var html = "<article id=\"\(cardID(card.todoID))\" class=\"card\" draggable=\"true\" tabindex=\"0\""
        html += " data-todo-id=\"\(HTML.escape(card.todoID))\" data-status=\"\(card.status.rawValue)\""
        html += " data-position=\"\(card.position)\" data-version=\"\(card.version)\" data-created-by=\"\(HTML.escape(card.createdBy))\">"
        html += "<h3 class=\"card-title\">\(HTML.escape(card.title))</h3>"
        if !card.notes.isEmpty { html += "<p class=\"card-notes\">\(HTML.escape(card.notes))</p>" }
        if !card.labels.isEmpty {
            html += "<ul class=\"labels\">" + card.labels.map { "<li class=\"label\">\(HTML.escape($0))</li>" }.joined() + "</ul>"
        }
        html += "<footer class=\"card-meta\">"
        if let due = card.dueDate, !due.isEmpty { html += "<time class=\"due\" datetime=\"\(HTML.escape(due))\">\(HTML.escape(due))</time>" }
        if let assignee = card.assignee, !assignee.isEmpty {
            html += "<span class=\"assignee\" title=\"Assignee\">\(HTML.escape(assignee))</span>"
        }
        html += "<span class=\"author\">by \(HTML.escape(card.createdByName))</span>"
        html += "</footer></article>"
        return html
    }
}

/// One domain event, rendered once for every client of its group: the `todo-event` with the event
/// JSON, then the Datastar patches that bring a board up to date.
public struct RenderedEvent: Sendable, Equatable {
    public let groupVersion: Int64
    public let event: TodoEvent
    public let text: String
    /// `text` encoded once; every client's write shares this storage.
    public let bytes: ByteBuffer
    /// `bytes` as one HTTP/1.1 chunk, framed once for every stream (see `HTTPChunk`).
    public let chunk: ByteBuffer

    public static func == (lhs: RenderedEvent, rhs: RenderedEvent) -> Bool {
        lhs.groupVersion == rhs.groupVersion && lhs.bytes == rhs.bytes
    }

    public init(event: TodoEvent, json: String) {
        let (event, json) = ReminderPrivacy.shared(event, json: json)
        groupVersion = event.groupVersion
        self.event = event
        let id = String(event.groupVersion)
        var text = DatastarSSE.event("todo-event", id: id, data: DatastarSSE.lines(of: json))
        switch event.eventType {
        case .todoCreated, .todoUpdated, .todoMoved, .todoRestored:
            if let card = BoardFragments.Card(event) {
                if event.eventType != .todoCreated {
                    text += DatastarSSE.removeElements(selector: "#\(BoardFragments.cardID(card.todoID))", eventID: id)
                }
                text += DatastarSSE.patchElements(BoardFragments.card(card), selector: "#\(BoardFragments.columnID(card.status))",
                                                  mode: .append, eventID: id)
            }
        case .todoDeleted:
            if let todoID = event.todoID {
                text += DatastarSSE.removeElements(selector: "#\(BoardFragments.cardID(todoID))", eventID: id)
            }
        default:
            break
        }
        self.text = text
        bytes = ByteBuffer(string: text)
        chunk = HTTPChunk.frame(bytes)
    }

    public init(json: String) throws {
        self.init(event: try TodoEvent(json: Array(json.utf8)), json: json)
    }

    /// The events of one EVENTS message (one, or a run of the group's; see `EventMessage`).
    public static func all(in payload: Data) throws -> [RenderedEvent] {
        try EventMessage.decodeParts(String(decoding: payload, as: UTF8.self)).map { RenderedEvent(event: $0.event, json: $0.jsonText) }
    }
}

/// A reminder's time and zone are its user's own (DESIGN §9): what the streamer sends of a reminder
/// event — live, in history, in an export — says who set, cleared or was reminded of which todo,
/// never when or in which zone.
enum ReminderPrivacy {
    static let types: Set<EventType> = [.reminderSet, .reminderCleared, .reminderFired]

    static func shared(_ event: TodoEvent, json: String) -> (TodoEvent, String) {
        guard types.contains(event.eventType) else { return (event, json) }
        var shared = event
        shared.remindAt = nil
        shared.timezone = nil
        shared.fireAt = nil
        return (shared, String(decoding: shared.jsonBytes(), as: UTF8.self))
    }

    /// The stored JSON of an event of type `type`, as the streamer may send it.
    static func shared(type: String, json: String) -> String {
        guard let eventType = EventType(rawValue: type), types.contains(eventType),
              let event = try? TodoEvent(json: Array(json.utf8)) else { return json }
        return shared(event, json: json).1
    }
}
