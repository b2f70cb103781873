import Contracts
import Foundation
import Metrics
import HTTPAPI
import Postgres
import Synchronization

/// The streamer's reads of the projection (it never writes).
public struct ReadStore: Sendable {
    let pool: PostgresPool
    /// How long a "no" about a group (unknown, not a member) is checked again when the database
    /// is a standby (`pg_is_in_recovery()`), before it is the answer: the group or the membership
    /// may have been written on the primary a moment ago and not be replayed here yet. Zero: never.
    let standbyGrace: Duration
    private let standby = StandbyWaits()
    private static let standbyWaits = Counter(label: "streamer_standby_read_waits_total")

    public init(pool: PostgresPool, standbyGrace: Duration = .zero) {
        self.pool = pool
        self.standbyGrace = standbyGrace
    }

    /// `read()`, read again (after 25 ms, doubling to 200 ms) for up to `standbyGrace` while
    /// `denied` says its answer is a "no" and this server's database is a standby: read-your-writes
    /// for the membership a client has just been given on the primary, or the group it has just
    /// created. At most `StandbyWaits.limit` reads wait at a time; past that a "no" is answered at
    /// once, so refusals cannot pile up waiting reads and queries.
    private func untilAllowed<T: Sendable>(_ read: () async throws -> T, denied: (T) -> Bool) async throws -> T {
        var answer = try await read()
        guard denied(answer), standbyGrace > .zero, await isStandby(), standby.enter() else { return answer }
        defer { standby.leave() }
        Self.standbyWaits.increment()
        let deadline = ContinuousClock.now + standbyGrace
        var pause = Duration.milliseconds(25)
        while denied(answer), ContinuousClock.now < deadline, !Task.isCancelled {
            try await Task.sleep(for: min(pause, deadline - ContinuousClock.now))
            pause = min(pause * 2, .milliseconds(200))
            answer = try await read()
        }
        return answer
    }

    /// Whether the database is a standby, asked at most every 5 s (a failover can change it).
    private func isStandby() async -> Bool {
        if let known = standby.known() { return known }
        let answer = (try? await pool.withConnection { try $0.query("SELECT pg_is_in_recovery() AS standby").first?.decode(Bool.self, "standby") }) ?? nil
        standby.remember(answer ?? true)
        return answer ?? true
    }

    /// Returns once the group's projection (as this server's database has it, a standby
    /// perhaps) has reached `version`, or `within` has passed (the read then shows what there is).
    /// Returns whether it was reached.
    @discardableResult
    public func waitForProjection(of group: String, atLeast version: Int64, within: Duration) async -> Bool {
        let deadline = ContinuousClock.now + within
        while true {
            let current = try? await pool.withConnection { connection in
                try connection.query("SELECT group_version FROM group_projection_offsets WHERE group_id = $1", group)
                    .first.map { try $0.decode(Int64.self, "group_version") }
            }
            if let current = current ?? nil, current >= version { return true }
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return false }
            try? await Task.sleep(for: .milliseconds(25))
        }
    }

    public func membership(of user: UUID, in group: String) async throws -> MembershipCheck {
        try await untilAllowed({ try await pool.withConnection { try $0.membership(of: user, in: group) } }) {
            if case .member = $0 { return false }
            return true
        }
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
        try await untilAllowed({ try await summaries(of: user, only: group).first }) { $0 == nil }
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
        /// In the trash only: when it was deleted, by whom, and until when it can be restored.
        public var deletedAt: Date? = nil
        public var deletedByName: String? = nil
        public var restorableUntil: Date? = nil

        enum CodingKeys: String, CodingKey {
            case todoID = "todo_id", title, notes, status, position, dueDate = "due_date", assignee, labels
            case createdBy = "created_by", createdByName = "created_by_name", version
            case deletedAt = "deleted_at", deletedByName = "deleted_by_name", restorableUntil = "restorable_until"
        }
    }

    /// The `todos` columns `Todo(row:)` reads.
    static let todoColumns = "todo_id, title, notes, status, position, due_date::text AS due_date, assignee, labels, created_by, created_by_name, version"

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
                    SELECT \(Self.todoColumns),
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
                    let todo = try Todo(row: row)
                    todos.append(todo)
                    last = TodoCursor(rank: try row.decode(Int.self, "rank"), position: todo.position, todoID: todo.todoID)
                }
                return TodoPage(todos: todos, nextCursor: rows.count > limit ? last?.encoded : nil, offset: try Self.offset(of: group, on: connection))
            }
        }
    }

    /// The group's trash: todos deleted within `Trash.retention` of `now`, newest deletion first.
    public func trash(of group: String, limit: Int, after cursor: TrashCursor?, now: Date = Date()) async throws -> TodoPage {
        try await pool.withConnection { connection in
            try connection.transaction(isolation: .repeatableRead) { connection in
                let start = cursor ?? TrashCursor.first
                let rows = try connection.queryPrepared("""
                    SELECT \(Self.todoColumns), deleted_at, updated_by_name,
                           (extract(epoch FROM deleted_at) * 1000000)::bigint AS deleted_us
                    FROM todos
                    WHERE group_id = $1 AND deleted_at IS NOT NULL AND deleted_at >= $2
                      AND (deleted_at, todo_id) < (timestamptz 'epoch' + $3::bigint * interval '1 microsecond', $4::text)
                    ORDER BY deleted_at DESC, todo_id DESC
                    LIMIT $5
                    """, group, now.addingTimeInterval(-Trash.retention), start.deletedMicros, start.todoID, limit + 1)
                var todos: [Todo] = []
                var last: TrashCursor?
                for row in rows.prefix(limit) {
                    var todo = try Todo(row: row)
                    let deletedAt = try row.decode(Date.self, "deleted_at")
                    todo.deletedAt = deletedAt
                    todo.deletedByName = try row.decode(String?.self, "updated_by_name")
                    todo.restorableUntil = deletedAt.addingTimeInterval(Trash.retention)
                    todos.append(todo)
                    last = TrashCursor(deletedMicros: try row.decode(Int64.self, "deleted_us"), todoID: todos[todos.count - 1].todoID)
                }
                return TodoPage(todos: todos, nextCursor: rows.count > limit ? last?.encoded : nil, offset: try Self.offset(of: group, on: connection))
            }
        }
    }

    static func offset(of group: String, on connection: PostgresConnection) throws -> Offset {
        let row = try connection.queryPrepared("SELECT group_version, stream_seq FROM group_projection_offsets WHERE group_id = $1", group).first
        return Offset(groupVersion: try row?.decode(Int64.self, "group_version") ?? 0,
                      streamSequence: try row?.decode(Int64.self, "stream_seq") ?? 0)
    }

    /// The group's events after `version`, as stored (the event JSON of the bus; a reminder's without
    /// its time and zone: `ReminderPrivacy`), oldest first.
    public func events(of group: String, after version: Int64, limit: Int) async throws -> [(version: Int64, json: String)] {
        try await pool.withConnection { connection in
            try connection.queryPrepared("""
                SELECT group_version, event_type, payload::text AS payload FROM todo_events
                WHERE group_id = $1 AND group_version > $2 ORDER BY group_version LIMIT $3
                """, group, version, limit).map {
                (try $0.decode(Int64.self, "group_version"),
                 ReminderPrivacy.shared(type: try $0.decode(String.self, "event_type"), json: try $0.decode(String.self, "payload")))
            }
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

/// Opaque pagination cursors are base64url of their fields joined by `:` (the last, a todo id, never holds one).
enum CursorText {
    static func encode(_ fields: [String]) -> String {
        Data(fields.joined(separator: ":").utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The fields, or nil when the text is not such a cursor (the last field, a todo id, must be
    /// empty or a valid id: a forged one reaches no query).
    static func decode(_ encoded: String, fields: Int) -> [Substring]? {
        var base64 = encoded.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard encoded.utf8.count <= 400, let data = Data(base64Encoded: base64) else { return nil }
        let parts = String(decoding: data, as: UTF8.self).split(separator: ":", maxSplits: fields - 1, omittingEmptySubsequences: false)
        guard parts.count == fields, let id = parts.last, id.isEmpty || TextRules.isValidID(String(id)) else { return nil }
        return parts
    }
}

/// The board's pagination cursor: `rank:position:todo_id` of the last row.
public struct TodoCursor: Sendable, Equatable {
    public let rank: Int
    public let position: Double
    public let todoID: String

    public var encoded: String { CursorText.encode([String(rank), String(position.bitPattern), todoID]) }

    public init(rank: Int, position: Double, todoID: String) {
        self.rank = rank
        self.position = position
        self.todoID = todoID
    }

    public init?(encoded: String) {
        guard let parts = CursorText.decode(encoded, fields: 3),
              let rank = Int(parts[0]), (0...2).contains(rank), let bits = UInt64(parts[1]) else { return nil }
        let position = Double(bitPattern: bits)
        guard position.isFinite else { return nil }
        self.init(rank: rank, position: position, todoID: String(parts[2]))
    }
}

/// The trash's pagination cursor: `deleted_at` (microseconds since 1970) and `todo_id` of the last row.
public struct TrashCursor: Sendable, Equatable {
    public let deletedMicros: Int64
    public let todoID: String

    public var encoded: String { CursorText.encode(["t", String(deletedMicros), todoID]) }

    /// Ahead of every row: the end of the year 9999 (Postgres's intervals do not reach `Int64.max` microseconds).
    static let first = TrashCursor(deletedMicros: 253_402_300_799_000_000, todoID: "")

    public init(deletedMicros: Int64, todoID: String) {
        self.deletedMicros = deletedMicros
        self.todoID = todoID
    }

    public init?(encoded: String) {
        guard let parts = CursorText.decode(encoded, fields: 3), parts[0] == "t", let micros = Int64(parts[1]),
              (0...Self.first.deletedMicros).contains(micros) else { return nil }
        self.init(deletedMicros: micros, todoID: String(parts[2]))
    }
}

extension ReadStore.Todo {
    /// A row of `todos` selected with `ReadStore.todoColumns`.
    init(row: PostgresRow) throws {
        self.init(todoID: try row.decode(String.self, "todo_id"), title: try row.decode(String.self, "title"),
                  notes: try row.decode(String.self, "notes"),
                  status: TodoStatus(rawValue: try row.decode(String.self, "status")) ?? .todo,
                  position: try row.decode(Double.self, "position"), dueDate: try row.decode(String?.self, "due_date"),
                  assignee: try row.decode(String?.self, "assignee"), labels: try row.decode([String].self, "labels"),
                  createdBy: try row.decode(String.self, "created_by"), createdByName: try row.decode(String.self, "created_by_name"),
                  version: try row.decode(Int64.self, "version"))
    }
}

/// `ReadStore`'s standby state: whether its database is a standby (asked again after 5 s) and how
/// many reads are waiting for the standby to replay a write.
final class StandbyWaits: Sendable {
    static let limit = 64
    private struct State {
        var standby: Bool?
        var askedAt = ContinuousClock.now
        var waiting = 0
    }
    private let state = Mutex(State())

    func known() -> Bool? {
        state.withLock { $0.standby != nil && ContinuousClock.now - $0.askedAt < .seconds(5) ? $0.standby : nil }
    }

    func remember(_ standby: Bool) {
        state.withLock { $0.standby = standby; $0.askedAt = ContinuousClock.now }
    }

    func enter() -> Bool {
        state.withLock { state in
            guard state.waiting < Self.limit else { return false }
            state.waiting += 1
            return true
        }
    }

    func leave() { state.withLock { $0.waiting -= 1 } }
}
