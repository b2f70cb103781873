import Contracts
import Foundation
import HTTPAPI
import Postgres

/// The calendar's read (DESIGN §9): a group's live todos due between two days, both included, at
/// most `maxDays` apart (`GET /api/v1/todos?group_id=&due_from=&due_to=`).
public struct DueRange: Sendable, Equatable {
    public static let maxDays = 92
    public let from: String
    public let to: String

    /// Both days or neither; `YYYY-MM-DD`, real days, `from` ≤ `to`, at most 92 days: else a 400.
    public static func parse(from: String?, to: String?) throws(APIError) -> DueRange? {
        switch (from, to) {
        case (nil, nil): return nil
        case (let from?, let to?):
            guard let first = dayNumber(from) else { throw APIError.badRequest("due_from: must be a date like 2026-12-31") }
            guard let last = dayNumber(to) else { throw APIError.badRequest("due_to: must be a date like 2026-12-31") }
            guard first <= last else { throw APIError.badRequest("due_to: must not be before due_from") }
            guard last - first + 1 <= maxDays else {
                throw APIError.badRequest("due_to: the range may span at most \(maxDays) days, both ends included")
            }
            return DueRange(from: from, to: to)
        default:
            throw APIError.badRequest(from == nil ? "due_from: is required with due_to" : "due_to: is required with due_from")
        }
    }

    static func dayNumber(_ text: String) -> Int? { TextRules.dayNumber(ofISODate: text) }
}

/// The calendar's pagination cursor: `due_date` and `todo_id` of the last row.
public struct DueCursor: Sendable, Equatable {
    public let dueDate: String
    public let todoID: String

    public var encoded: String { CursorText.encode(["d", dueDate, todoID]) }

    public init(dueDate: String, todoID: String) {
        self.dueDate = dueDate
        self.todoID = todoID
    }

    public init?(encoded: String) {
        guard let parts = CursorText.decode(encoded, fields: 3), parts[0] == "d", TextRules.isISODate(String(parts[1])) else { return nil }
        self.init(dueDate: String(parts[1]), todoID: String(parts[2]))
    }
}

extension ReadStore {
    /// A page of the group's live todos due within `range`, by day then id.
    public func todos(of group: String, due range: DueRange, limit: Int, after cursor: DueCursor?) async throws -> TodoPage {
        try await pool.withConnection { connection in
            try connection.transaction(isolation: .repeatableRead) { connection in
                let start = cursor ?? DueCursor(dueDate: range.from, todoID: "")
                let rows = try connection.queryPrepared("""
                    SELECT \(Self.todoColumns) FROM todos
                    WHERE group_id = $1 AND deleted_at IS NULL AND due_date IS NOT NULL
                      AND due_date BETWEEN $2::date AND $3::date
                      AND (due_date, todo_id) > ($4::date, $5::text)
                    ORDER BY due_date, todo_id
                    LIMIT $6
                    """, group, range.from, range.to, start.dueDate, start.todoID, limit + 1)
                let todos = try rows.prefix(limit).map { try Todo(row: $0) }
                let next = rows.count > limit ? todos.last.map { DueCursor(dueDate: $0.dueDate ?? range.from, todoID: $0.todoID).encoded } : nil
                return TodoPage(todos: todos, nextCursor: next, offset: try Self.offset(of: group, on: connection))
            }
        }
    }
}
