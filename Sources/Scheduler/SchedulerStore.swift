import Contracts
import Foundation
import Postgres
import ServiceSupport

/// A reminder a replica claimed to fire.
struct DueReminder: Equatable, Sendable {
    let groupID: String
    let todoID: String
    let userID: String
    let fireAt: Date
    let actorName: String
    /// 0, or how many firings the engine refused as not yet due (part of the command id).
    var attempt = 0
}

/// The scheduler's tables (migration 0012): the due index, the assignees it has seen, and the
/// notifications it writes. Every statement takes its values as parameters (arrays, for a batch).
struct SchedulerStore: Sendable {
    let pool: PostgresPool

    /// Firings refused as not yet due are retried under a new id at most this often.
    static let maxAttempts = 20

    /// Applies a batch's changes in one transaction; returns the ids of the users with a
    /// notification from these events (written now or by an earlier delivery of the batch, so a
    /// replay signals them again).
    func apply(_ changes: IndexChanges) async throws -> Set<String> {
        guard !changes.isEmpty else { return [] }
        return try await pool.withTransaction { connection in
            try Self.apply(changes, on: connection)
        }
    }

    /// Since when events make notifications: the first start of any replica, recorded once.
    func notificationsSince() async throws -> Date {
        try await pool.withConnection { connection in
            _ = try connection.query("INSERT INTO scheduler_state (name, at) VALUES ('notifications_since', now()) ON CONFLICT DO NOTHING")
            return try connection.query("SELECT at FROM scheduler_state WHERE name = 'notifications_since'")[0].decode(Date.self, "at")
        }
    }

    static func apply(_ changes: IndexChanges, on connection: PostgresConnection) throws -> Set<String> {
        let rows = changes.reminderRows
        if !rows.isEmpty {
            // A row is replaced only by a newer event; a new reminder starts unclaimed.
            _ = try connection.query("""
                INSERT INTO scheduler_reminders AS r (group_id, todo_id, user_id, version, fire_at, actor_name, remind_at, timezone)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::text[], $7::text[], $8::text[])
                ON CONFLICT (group_id, todo_id, user_id) DO UPDATE
                    SET version = EXCLUDED.version, fire_at = EXCLUDED.fire_at, actor_name = EXCLUDED.actor_name,
                        remind_at = EXCLUDED.remind_at, timezone = EXCLUDED.timezone,
                        claimed_until = NULL, fire_count = 0, fire_attempt = 0, updated_at = now()
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
        for refusal in changes.refusals { try applyRefusal(refusal, on: connection) }
        var eventIDs: [String] = []
        if !changes.fired.isEmpty {
            let fired = changes.fired
            _ = try connection.query("""
                INSERT INTO notifications (user_id, kind, group_id, todo_id, title, event_id, late, created_at)
                SELECT user_id, 'reminder', group_id, todo_id, title, event_id, late, created_at
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::timestamptz[])
                    AS n(user_id, group_id, todo_id, title, event_id, late, created_at)
                ON CONFLICT (event_id, user_id) DO NOTHING
                """, fired.map(\.userID), fired.map(\.groupID), fired.map(\.todoID), fired.map(\.title),
                fired.map(\.eventID), fired.map(\.late), fired.map(\.createdAt))
            eventIDs += fired.map(\.eventID)
        }
        if !changes.assignments.isEmpty {
            eventIDs += try applyAssignments(changes.assignments, on: connection)
        }
        guard !eventIDs.isEmpty else { return [] }
        return Set(try connection.query("SELECT DISTINCT user_id FROM notifications WHERE event_id = ANY($1::text[])", eventIDs)
            .map { try $0.decode(String.self, "user_id") })
    }

    /// The engine refused a firing: if it was for the reminder as the index has it now (same
    /// instant, same attempt), the reminder is gone (`no_reminder`: ended here too), or was not
    /// due yet by the engine's clock (fired again shortly, under the next attempt's id).
    private static func applyRefusal(_ refusal: IndexChanges.FiringRefusal, on connection: PostgresConnection) throws {
        let key = refusal.key
        guard let row = try connection.query("""
            SELECT fire_at, fire_attempt FROM scheduler_reminders
            WHERE group_id = $1 AND todo_id = $2 AND user_id = $3 AND fire_at IS NOT NULL FOR UPDATE
            """, key.groupID, key.todoID, key.userID).first else { return }
        let attempt = try row.decode(Int.self, "fire_attempt")
        let current = ReminderFiring.commandID(groupID: key.groupID, todoID: key.todoID, userID: key.userID,
                                               fireAt: try row.decode(Date.self, "fire_at"), attempt: attempt)
        guard current == refusal.commandID else { return } // refused for an instant the index no longer has
        if refusal.code == RejectionCodes.notDue && attempt + 1 < maxAttempts {
            _ = try connection.query("""
                UPDATE scheduler_reminders SET fire_attempt = fire_attempt + 1, claimed_until = now() + interval '2 seconds'
                WHERE group_id = $1 AND todo_id = $2 AND user_id = $3
                """, key.groupID, key.todoID, key.userID)
        } else {
            _ = try connection.query("""
                UPDATE scheduler_reminders SET fire_at = NULL, remind_at = NULL, timezone = NULL, updated_at = now()
                WHERE group_id = $1 AND todo_id = $2 AND user_id = $3
                """, key.groupID, key.todoID, key.userID)
        }
    }

    enum RejectionCodes {
        /// What the engine answers a `fire-reminder` that comes before its instant.
        static let notDue = "invalid_command"
    }

    /// Stores each changed assignee and writes the `assigned` notifications; returns their event ids.
    private static func applyAssignments(_ assignments: [IndexChanges.TodoAssignment], on connection: PostgresConnection) throws -> [String] {
        var keys = Set<AssigneeChanges.TodoKey>()
        for assignment in assignments { keys.insert(.init(groupID: assignment.groupID, todoID: assignment.todoID)) }
        let list = keys.sorted { ($0.groupID, $0.todoID) < ($1.groupID, $1.todoID) }
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
            let updates = changes.updates.sorted { ($0.key.groupID, $0.key.todoID) < ($1.key.groupID, $1.key.todoID) }
            _ = try connection.query("""
                INSERT INTO scheduler_assignees AS a (group_id, todo_id, assignee, version)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                ON CONFLICT (group_id, todo_id) DO UPDATE SET assignee = EXCLUDED.assignee, version = EXCLUDED.version
                    WHERE a.version < EXCLUDED.version
                """, updates.map(\.key.groupID), updates.map(\.key.todoID), updates.map(\.value.assignee), updates.map(\.value.version))
        }
        guard !changes.notifications.isEmpty else { return [] }
        let notes = changes.notifications
        // Only to a member of the group (the account behind the username, still in it).
        _ = try connection.query("""
            INSERT INTO notifications (user_id, kind, group_id, todo_id, title, event_id, created_at)
            SELECT u.user_id::text, 'assigned', n.group_id, n.todo_id, n.title, n.event_id, n.created_at
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
                AS n(username, group_id, todo_id, title, event_id, created_at)
            JOIN users u ON u.username = n.username
            JOIN group_members m ON m.group_id = n.group_id AND m.user_id = u.user_id
            ON CONFLICT (event_id, user_id) DO NOTHING
            """, notes.map { $0.assignee ?? "" }, notes.map(\.groupID), notes.map(\.todoID), notes.map(\.title),
            notes.map(\.eventID), notes.map(\.occurredAt))
        return notes.map(\.eventID)
    }

    /// Claims up to `limit` reminders due by `now` that no replica holds, for `lease` (doubling
    /// with each claim of the same reminder, up to 64 times: a reminder whose event does not come
    /// back, the engine being down, is not sent again every lease); another replica's claims are
    /// skipped, not waited for (`SKIP LOCKED`), so two never fire one.
    func claimDue(now: Date, limit: Int, lease: Duration) async throws -> [DueReminder] {
        try await pool.withConnection { connection in
            try connection.query("""
                UPDATE scheduler_reminders r
                SET claimed_until = $1::timestamptz + make_interval(secs => $2::float8 * power(2, least(r.fire_count, 6))),
                    fire_count = r.fire_count + 1
                FROM (SELECT group_id, todo_id, user_id FROM scheduler_reminders
                      WHERE fire_at IS NOT NULL AND fire_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
                      ORDER BY fire_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
                WHERE r.group_id = due.group_id AND r.todo_id = due.todo_id AND r.user_id = due.user_id
                RETURNING r.group_id, r.todo_id, r.user_id, r.fire_at, r.actor_name, r.fire_attempt
                """, now, lease.seconds, limit).map { row in
                DueReminder(groupID: try row.decode(String.self, "group_id"), todoID: try row.decode(String.self, "todo_id"),
                            userID: try row.decode(String.self, "user_id"), fireAt: try row.decode(Date.self, "fire_at"),
                            actorName: try row.decode(String.self, "actor_name"), attempt: try row.decode(Int.self, "fire_attempt"))
            }
        }
    }

    /// Hands claims back (their command could not be published): due again at once.
    func release(_ reminders: [DueReminder]) async throws {
        guard !reminders.isEmpty else { return }
        _ = try await pool.withConnection { connection in
            try connection.query("""
                UPDATE scheduler_reminders r SET claimed_until = NULL, fire_count = greatest(r.fire_count - 1, 0)
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
