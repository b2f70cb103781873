import Contracts
import Foundation
import HTTPAPI
import Postgres

/// The streamer's reads of the projection (it never writes).
public struct ReadStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    public func membership(of user: UUID, in group: String) async throws -> MembershipCheck {
        try await pool.withConnection { try $0.membership(of: user, in: group) }
    }

    public struct GroupSummary: Encodable, Sendable, Equatable {
        public let groupID: String
        public let groupName: String
        public let role: String
        public let memberCount: Int
        public let todoCounts: [String: Int]
        public let totalTodos: Int
        public let groupVersion: Int64

        enum CodingKeys: String, CodingKey {
            case groupID = "group_id", groupName = "group_name", role, memberCount = "member_count"
            case todoCounts = "todo_counts", totalTodos = "total_todos", groupVersion = "group_version"
        }
    }

    /// The user's live groups with role, member count and todo counts by status.
    public func groups(of user: UUID) async throws -> [GroupSummary] {
        try await summaries(of: user, only: nil)
    }

    /// One of the user's groups (nil when it is not theirs or does not exist).
    public func group(_ group: String, of user: UUID) async throws -> GroupSummary? {
        try await summaries(of: user, only: group).first
    }

    private func summaries(of user: UUID, only group: String?) async throws -> [GroupSummary] {
        try await pool.withConnection { connection in
            try connection.query("""
                SELECT g.group_id, g.name, m.role,
                       (SELECT count(*) FROM group_members c WHERE c.group_id = g.group_id) AS member_count,
                       count(t.todo_id) FILTER (WHERE t.status = 'todo') AS todo,
                       count(t.todo_id) FILTER (WHERE t.status = 'in_progress') AS in_progress,
                       count(t.todo_id) FILTER (WHERE t.status = 'done') AS done,
                       coalesce((SELECT o.group_version FROM group_projection_offsets o WHERE o.group_id = g.group_id), 0) AS group_version
                FROM group_members m
                JOIN groups g ON g.group_id = m.group_id AND g.deleted_at IS NULL
                LEFT JOIN todos t ON t.group_id = g.group_id AND t.deleted_at IS NULL
                WHERE m.user_id = $1 AND ($2::text IS NULL OR m.group_id = $2)
                GROUP BY g.group_id, g.name, m.role, g.created_at
                ORDER BY g.created_at, g.group_id
                """, user, group).map { row in
                let counts = ["todo": try row.decode(Int.self, "todo"), "in_progress": try row.decode(Int.self, "in_progress"),
                              "done": try row.decode(Int.self, "done")]
                return GroupSummary(groupID: try row.decode(String.self, "group_id"), groupName: try row.decode(String.self, "name"),
                                    role: try row.decode(String.self, "role"), memberCount: try row.decode(Int.self, "member_count"),
                                    todoCounts: counts, totalTodos: counts.values.reduce(0, +),
                                    groupVersion: try row.decode(Int64.self, "group_version"))
            }
        }
    }

    public struct Member: Encodable, Sendable, Equatable {
        public let userID: String
        public let username: String
        public let role: String

        enum CodingKeys: String, CodingKey {
            case userID = "user_id", username, role
        }
    }

    /// Owners first, then admins, then members, each by name.
    public func members(of group: String) async throws -> [Member] {
        try await pool.withConnection { connection in
            try connection.query("""
                SELECT u.user_id, u.username, m.role FROM group_members m JOIN users u ON u.user_id = m.user_id
                WHERE m.group_id = $1
                ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, u.username
                """, group).map { row in
                Member(userID: try row.decode(UUID.self, "user_id").lowercasedString,
                       username: try row.decode(String.self, "username"), role: try row.decode(String.self, "role"))
            }
        }
    }

    public struct Todo: Codable, Sendable, Equatable {
        public let todoID: String
        public let title: String
        public let notes: String
        public let status: TodoStatus
        public let position: Double
        public let dueDate: String?
        public let assignee: String?
        public let labels: [String]
        public let createdBy: String
        public let createdByName: String
        public let version: Int64

        enum CodingKeys: String, CodingKey {
            case todoID = "todo_id", title, notes, status, position, dueDate = "due_date", assignee, labels
            case createdBy = "created_by", createdByName = "created_by_name", version
        }
    }

    /// Where the projection of a group stands: reads carry it so a client can tell how fresh they are.
    public struct Offset: Encodable, Sendable, Equatable {
        public let groupVersion: Int64
        public let streamSequence: Int64

        enum CodingKeys: String, CodingKey {
            case groupVersion = "group_version", streamSequence = "stream_seq"
        }
    }

    /// A page of the board, in board order: status (todo, in progress, done), position, id.
    public struct TodoPage: Encodable, Sendable {
        public let todos: [Todo]
        public let nextCursor: String?
        public let offset: Offset

        enum CodingKeys: String, CodingKey {
            case todos, nextCursor = "next_cursor", offset
        }
    }

    /// The cursor is the last row's sort key; the rows and the offset come from one snapshot.
    public func todos(of group: String, limit: Int, after cursor: TodoCursor?) async throws -> TodoPage {
        try await pool.withConnection { connection in
            try connection.transaction(isolation: .repeatableRead) { connection in
                let start = cursor ?? TodoCursor(rank: -1, position: -Double.greatestFiniteMagnitude, todoID: "")
                let rows = try connection.queryPrepared("""
                    SELECT todo_id, title, notes, status, position, due_date::text AS due_date, assignee, labels,
                           created_by, created_by_name, version,
                           CASE status WHEN 'todo' THEN 0 WHEN 'in_progress' THEN 1 ELSE 2 END AS rank
                    FROM todos
                    WHERE group_id = $1 AND deleted_at IS NULL
                      AND (CASE status WHEN 'todo' THEN 0 WHEN 'in_progress' THEN 1 ELSE 2 END, position, todo_id)
                          > ($2::int, $3::float8, $4::text)
                    ORDER BY rank, position, todo_id
                    LIMIT $5
                    """, group, start.rank, start.position, start.todoID, limit + 1)
                var todos: [Todo] = []
                var last: TodoCursor?
                for row in rows.prefix(limit) {
                    let todo = Todo(
                        todoID: try row.decode(String.self, "todo_id"), title: try row.decode(String.self, "title"),
                        notes: try row.decode(String.self, "notes"),
                        status: TodoStatus(rawValue: try row.decode(String.self, "status")) ?? .todo,
                        position: try row.decode(Double.self, "position"), dueDate: try row.decode(String?.self, "due_date"),
                        assignee: try row.decode(String?.self, "assignee"), labels: try row.decode([String].self, "labels"),
                        createdBy: try row.decode(String.self, "created_by"), createdByName: try row.decode(String.self, "created_by_name"),
                        version: try row.decode(Int64.self, "version"))
                    todos.append(todo)
                    last = TodoCursor(rank: try row.decode(Int.self, "rank"), position: todo.position, todoID: todo.todoID)
                }
                let offsetRow = try connection.queryPrepared(
                    "SELECT group_version, stream_seq FROM group_projection_offsets WHERE group_id = $1", group).first
                let offset = Offset(groupVersion: try offsetRow?.decode(Int64.self, "group_version") ?? 0,
                                    streamSequence: try offsetRow?.decode(Int64.self, "stream_seq") ?? 0)
                return TodoPage(todos: todos, nextCursor: rows.count > limit ? last?.encoded : nil, offset: offset)
            }
        }
    }

    /// The group's events after `version`, as stored (the event JSON of the bus), oldest first.
    public func events(of group: String, after version: Int64, limit: Int) async throws -> [(version: Int64, json: String)] {
        try await pool.withConnection { connection in
            try connection.queryPrepared("""
                SELECT group_version, payload::text AS payload FROM todo_events
                WHERE group_id = $1 AND group_version > $2 ORDER BY group_version LIMIT $3
                """, group, version, limit).map { (try $0.decode(Int64.self, "group_version"), try $0.decode(String.self, "payload")) }
        }
    }

    /// The EVENTS stream sequence of the group's event at `version`, when the sink has it.
    public func streamSequence(of group: String, version: Int64) async throws -> UInt64? {
        try await pool.withConnection { connection in
            try connection.queryPrepared("SELECT stream_seq FROM todo_events WHERE group_id = $1 AND group_version = $2", group, version)
                .first.map { UInt64(try $0.decode(Int64.self, "stream_seq")) }
        }
    }
}

/// An opaque pagination cursor: base64url of `rank:position:todo_id`.
public struct TodoCursor: Sendable, Equatable {
    public let rank: Int
    public let position: Double
    public let todoID: String

    public var encoded: String {
        Data("\(rank):\(position.bitPattern):\(todoID)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public init(rank: Int, position: Double, todoID: String) {
        self.rank = rank
        self.position = position
        self.todoID = todoID
    }

    public init?(encoded: String) {
        var base64 = encoded.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard encoded.utf8.count <= 400, let data = Data(base64Encoded: base64) else { return nil }
        let parts = String(decoding: data, as: UTF8.self).split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let rank = Int(parts[0]), (0...2).contains(rank), let bits = UInt64(parts[1]) else { return nil }
        let position = Double(bitPattern: bits)
        guard position.isFinite else { return nil }
        self.init(rank: rank, position: position, todoID: String(parts[2]))
    }
}
