import Contracts
import Foundation
import Postgres

/// A reminder a replica claimed to fire.
struct DueReminder: Equatable, Sendable {
    let groupID: String
    let todoID: String
    let userID: String
    let fireAt: Date
    let actorName: String
}

/// The scheduler's tables (migration 0012): the due index, the assignees it has seen, and the
/// notifications it writes. Every statement takes its values as parameters (arrays, for a batch).
struct SchedulerStore: Sendable {
    let pool: PostgresPool

    /// Applies a batch's changes in one transaction; returns the ids of the users who got a
    /// notification.
    func apply(_ changes: IndexChanges) async throws -> Set<String> {
        guard !changes.isEmpty else { return [] }
        return try await pool.withTransaction { connection in
            try Self.apply(changes, on: connection)
        }
    }

    static func apply(_ changes: IndexChanges, on connection: PostgresConnection) throws -> Set<String> {
        let rows = Array(changes.reminders.values)
        if !rows.isEmpty {
            // A row is replaced only by a newer event; a new reminder starts unclaimed.
            _ = try connection.query("""
                INSERT INTO scheduler_reminders AS r (group_id, todo_id, user_id, version, fire_at, actor_name, remind_at, timezone)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::text[], $7::text[], $8::text[])
                ON CONFLICT (group_id, todo_id, user_id) DO UPDATE
                    SET version = EXCLUDED.version, fire_at = EXCLUDED.fire_at, actor_name = EXCLUDED.actor_name,
                        remind_at = EXCLUDED.remind_at, timezone = EXCLUDED.timezone,
                        claimed_until = NULL, fire_count = 0, updated_at = now()
                    WHERE r.version < EXCLUDED.version
                """,
                rows.map(\.key.groupID), rows.map(\.key.todoID), rows.map(\.key.userID), rows.map(\.version),
                rows.map(\.fireAt), rows.map(\.actorName), rows.map(\.remindAt), rows.map(\.timezone))
        }
        if !changes.todoEnds.isEmpty {
            let ends = changes.todoEnds
            _ = try connection.query("""
                UPDATE scheduler_reminders r SET fire_at = NULL, remind_at = NULL, timezone = NULL, version = e.version, updated_at = now()
                FROM unnest($1::text[], $2::text[], $3::bigint[]) AS e(group_id, todo_id, version)
                WHERE r.group_id = e.group_id AND r.todo_id = e.todo_id AND r.fire_at IS NOT NULL AND r.version < e.version
                """, ends.map(\.groupID), ends.map(\.todoID), ends.map(\.version))
        }
        if !changes.memberEnds.isEmpty {
            let ends = changes.memberEnds
            _ = try connection.query("""
                UPDATE scheduler_reminders r SET fire_at = NULL, remind_at = NULL, timezone = NULL, version = e.version, updated_at = now()
                FROM unnest($1::text[], $2::text[], $3::bigint[]) AS e(group_id, user_id, version)
                WHERE r.group_id = e.group_id AND (e.user_id IS NULL OR r.user_id = e.user_id)
                  AND r.fire_at IS NOT NULL AND r.version < e.version
                """, ends.map(\.groupID), ends.map(\.userID), ends.map(\.version))
        }
        var notified = Set<String>()
        if !changes.fired.isEmpty {
            let fired = changes.fired
            for row in try connection.query("""
                INSERT INTO notifications (user_id, kind, group_id, todo_id, title, event_id, late, created_at)
                SELECT user_id, 'reminder', group_id, todo_id, title, event_id, late, created_at
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::timestamptz[])
                    AS n(user_id, group_id, todo_id, title, event_id, late, created_at)
                ON CONFLICT (event_id, user_id) DO NOTHING
                RETURNING user_id
                """, fired.map(\.userID), fired.map(\.groupID), fired.map(\.todoID), fired.map(\.title),
                fired.map(\.eventID), fired.map(\.late), fired.map(\.createdAt)) {
                notified.insert(try row.decode(String.self, "user_id"))
            }
        }
        if !changes.assignments.isEmpty {
            notified.formUnion(try applyAssignments(changes.assignments, on: connection))
        }
        return notified
    }

    /// Stores each changed assignee and writes the `assigned` notifications.
    private static func applyAssignments(_ assignments: [IndexChanges.TodoAssignment], on connection: PostgresConnection) throws -> Set<String> {
        var keys = Set<AssigneeChanges.TodoKey>()
        for assignment in assignments { keys.insert(.init(groupID: assignment.groupID, todoID: assignment.todoID)) }
        let list = Array(keys)
        var known: [AssigneeChanges.TodoKey: AssigneeChanges.Stored] = [:]
        // Locked, so two replicas' batches about one todo take turns.
        for row in try connection.query("""
            SELECT a.group_id, a.todo_id, a.assignee, a.version FROM scheduler_assignees a
            JOIN unnest($1::text[], $2::text[]) AS k(group_id, todo_id) ON a.group_id = k.group_id AND a.todo_id = k.todo_id
            ORDER BY a.group_id, a.todo_id FOR UPDATE OF a
            """, list.map(\.groupID), list.map(\.todoID)) {
            let key = AssigneeChanges.TodoKey(groupID: try row.decode(String.self, "group_id"), todoID: try row.decode(String.self, "todo_id"))
            known[key] = .init(assignee: try row.decode(String?.self, "assignee"), version: try row.decode(Int64.self, "version"))
        }
        let changes = AssigneeChanges(assignments, known: known)
        if !changes.updates.isEmpty {
            let updates = Array(changes.updates)
            _ = try connection.query("""
                INSERT INTO scheduler_assignees AS a (group_id, todo_id, assignee, version)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                ON CONFLICT (group_id, todo_id) DO UPDATE SET assignee = EXCLUDED.assignee, version = EXCLUDED.version
                    WHERE a.version < EXCLUDED.version
                """, updates.map(\.key.groupID), updates.map(\.key.todoID), updates.map(\.value.assignee), updates.map(\.value.version))
        }
        guard !changes.notifications.isEmpty else { return [] }
        let notes = changes.notifications
        var notified = Set<String>()
        for row in try connection.query("""
            INSERT INTO notifications (user_id, kind, group_id, todo_id, title, event_id, created_at)
            SELECT u.user_id::text, 'assigned', n.group_id, n.todo_id, n.title, n.event_id, n.created_at
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
                AS n(username, group_id, todo_id, title, event_id, created_at)
            JOIN users u ON u.username = n.username
            ON CONFLICT (event_id, user_id) DO NOTHING
            RETURNING user_id
            """, notes.map { $0.assignee ?? "" }, notes.map(\.groupID), notes.map(\.todoID), notes.map(\.title),
            notes.map(\.eventID), notes.map(\.occurredAt)) {
            notified.insert(try row.decode(String.self, "user_id"))
        }
        return notified
    }

    /// Claims up to `limit` reminders due by `now` that no replica holds, for `lease`; another
    /// replica's claims are skipped, not waited for (`SKIP LOCKED`), so two never fire one.
    func claimDue(now: Date, limit: Int, lease: Duration) async throws -> [DueReminder] {
        let until = now.addingTimeInterval(lease.seconds)
        return try await pool.withConnection { connection in
            try connection.query("""
                UPDATE scheduler_reminders r SET claimed_until = $2, fire_count = r.fire_count + 1
                FROM (SELECT group_id, todo_id, user_id FROM scheduler_reminders
                      WHERE fire_at IS NOT NULL AND fire_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
                      ORDER BY fire_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
                WHERE r.group_id = due.group_id AND r.todo_id = due.todo_id AND r.user_id = due.user_id
                RETURNING r.group_id, r.todo_id, r.user_id, r.fire_at, r.actor_name
                """, now, until, limit).map { row in
                DueReminder(groupID: try row.decode(String.self, "group_id"), todoID: try row.decode(String.self, "todo_id"),
                            userID: try row.decode(String.self, "user_id"), fireAt: try row.decode(Date.self, "fire_at"),
                            actorName: try row.decode(String.self, "actor_name"))
            }
        }
    }

    /// Hands claims back (their command could not be published): due again at once.
    func release(_ reminders: [DueReminder]) async throws {
        guard !reminders.isEmpty else { return }
        _ = try await pool.withConnection { connection in
            try connection.query("""
                UPDATE scheduler_reminders r SET claimed_until = NULL
                FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS k(group_id, todo_id, user_id, fire_at)
                WHERE r.group_id = k.group_id AND r.todo_id = k.todo_id AND r.user_id = k.user_id AND r.fire_at = k.fire_at
                """, reminders.map(\.groupID), reminders.map(\.todoID), reminders.map(\.userID), reminders.map(\.fireAt))
        }
    }

    /// Deletes ended reminders' rows older than `cutoff`.
    @discardableResult
    func purgeEnded(before cutoff: Date) async throws -> Int {
        try await pool.withConnection { connection in
            try connection.query("""
                DELETE FROM scheduler_reminders WHERE ctid = ANY(ARRAY(
                    SELECT ctid FROM scheduler_reminders WHERE fire_at IS NULL AND updated_at < $1 LIMIT 5000 FOR UPDATE SKIP LOCKED))
                """, cutoff).affectedRows
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
