import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import NIOCore
import Postgres

/// `GET /api/v1/groups/{id}/export` (DESIGN §10): a group as one JSON document — the group, its
/// members, its live todos and its whole event history — or, as CSV, its todos. The body is
/// written page by page (`pageSize` rows a query), each page once the client has taken the one
/// before (Hummingbird's writer waits on the socket), so the streamer's memory holds one page
/// whatever the group's size, and no database connection is held between pages.
///
/// The history runs from version 1 to the group's projected version when the export began
/// (`group.group_version`), without a gap; the todos are read as the pages go, so a change made
/// during a long download may show in `todos` and not yet in `events`.
public struct GroupExport: Sendable {
    public enum Format: String, Sendable {
        case json, csv
    }

    let store: ReadStore
    /// Rows a query reads and a write sends.
    let pageSize: Int

    public init(store: ReadStore, pageSize: Int = 500) {
        self.store = store
        self.pageSize = pageSize
    }

    /// The response for `group` (a summary read with the caller's membership) in `format`.
    public func response(for group: ReadStore.GroupSummary, format: Format, now: Date = Date()) -> Response {
        let filename = "teamboard-\(group.groupID).\(format.rawValue)"
        var headers: HTTPFields = [
            .contentType: format == .json ? "application/json; charset=utf-8" : "text/csv; charset=utf-8",
            .contentDisposition: "attachment; filename=\"\(filename)\"",
        ]
        headers[.cacheControl] = "no-store"
        let body = ResponseBody { [self] writer in
            switch format {
            case .json: try await writeJSON(group, now: now, to: &writer)
            case .csv: try await writeCSV(group, to: &writer)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    /// The document. Its last field, `"complete":true`, tells a reader the download was not cut
    /// short (a failure after the first page can only end the response early).
    func writeJSON(_ group: ReadStore.GroupSummary, now: Date, to writer: inout any ResponseBodyWriter) async throws {
        let exportedAt = ISO8601DateFormatter().string(from: now)
        var head = "{\"format\":\"\(GroupExportFormat.name)\",\"format_version\":\(GroupExportFormat.version),\"exported_at\":\"\(exportedAt)\","
        head += "\"group\":{\"group_id\":\(JSONBody.quote(group.groupID)),\"name\":\(JSONBody.quote(group.groupName)),\"group_version\":\(group.groupVersion)},"
        head += "\"members\":["
        head += try await store.members(of: group.groupID).map { String(decoding: try Self.encoder.encode($0), as: UTF8.self) }.joined(separator: ",")
        head += "],\"todos\":["
        try await writer.write(ByteBuffer(string: head))

        var first = true
        try await forEachTodoPage(of: group.groupID) { page in
            var chunk = ByteBuffer()
            for todo in page {
                if !first { chunk.writeString(",") }
                first = false
                chunk.writeBytes(try Self.encoder.encode(todo))
            }
            try await writer.write(chunk)
        }

        try await writer.write(ByteBuffer(string: "],\"events\":["))
        first = true
        var version: Int64 = 0
        while version < group.groupVersion {
            let page = try await store.events(of: group.groupID, after: version, limit: pageSize)
                .filter { $0.version <= group.groupVersion }
            guard let last = page.last else { break }
            var chunk = ByteBuffer()
            for event in page {
                if !first { chunk.writeString(",") }
                first = false
                chunk.writeString(event.json)
            }
            try await writer.write(chunk)
            version = last.version
        }
        try await writer.write(ByteBuffer(string: "],\"complete\":true}\n"))
    }

    static let csvColumns = ["todo_id", "title", "status", "position", "due_date", "assignee", "labels", "notes",
                             "created_by_name", "version"]

    func writeCSV(_ group: ReadStore.GroupSummary, to writer: inout any ResponseBodyWriter) async throws {
        try await writer.write(ByteBuffer(string: Self.csvColumns.joined(separator: ",") + "\r\n"))
        try await forEachTodoPage(of: group.groupID) { page in
            var chunk = ByteBuffer()
            for todo in page {
                // Ids, statuses, numbers and dates are the server's own text: never a formula, never quoted.
                let cells = [
                    todo.todoID, Self.csvText(todo.title), todo.status.rawValue, "\(todo.position)", todo.dueDate ?? "",
                    Self.csvText(todo.assignee ?? ""), Self.csvText(todo.labels.joined(separator: ", ")), Self.csvText(todo.notes),
                    Self.csvText(todo.createdByName), "\(todo.version)",
                ]
                chunk.writeString(cells.joined(separator: ",") + "\r\n")
            }
            try await writer.write(chunk)
        }
    }

    /// Calls `body` with each page of the group's live todos, by id.
    func forEachTodoPage(of group: String, _ body: ([ReadStore.Todo]) async throws -> Void) async throws {
        var after = ""
        while true {
            let page = try await store.liveTodos(of: group, after: after, limit: pageSize)
            guard let last = page.last else { return }
            try await body(page)
            after = last.todoID
            if page.count < pageSize { return }
        }
    }

    /// A text cell (RFC 4180): quoted when it holds a comma, a quote or a line break. A cell that
    /// a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, carriage return first)
    /// gets a leading `'`, so opening the file runs nothing a member typed.
    static func csvText(_ text: String) -> String {
        var value = text
        if let first = value.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension ReadStore {
    /// A page of the group's live todos by id (the export's order), after `todoID`.
    func liveTodos(of group: String, after todoID: String, limit: Int) async throws -> [Todo] {
        try await pool.withConnection { connection in
            try connection.queryPrepared("""
                SELECT \(Self.todoColumns) FROM todos
                WHERE group_id = $1 AND deleted_at IS NULL AND todo_id > $2
                ORDER BY todo_id
                LIMIT $3
                """, group, todoID, limit).map { try Todo(row: $0) }
        }
    }
}
