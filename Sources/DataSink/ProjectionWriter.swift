import Contracts
import Postgres

/// Writes a batch of events into the projection tables, inside the caller's transaction:
///
/// 1. COPY the batch into a temporary staging table (binary format: the server parses no text);
/// 2. lock the batch's groups (transaction-scoped advisory locks, in hash order): batches of one
///    group from several sink replicas commit one after the other;
/// 3. one statement inserts the events (`ON CONFLICT (event_id) DO NOTHING`), then, for the
///    events actually inserted, upserts the newest snapshot of each todo (only over an older
///    version; a delete sets `deleted_at` (the todo is in the trash), a restore clears it);
/// 4. each group's offset moves to the highest `group_version` up to which every event is stored,
///    so a reader holding that offset knows nothing before it is missing (after a crash, events
///    may be redelivered after newer ones);
/// 5. when the batch deletes a group, tombstones that group's todos.
///
/// Every todo event carries the todo's full snapshot, so applying the newest inserted event of a
/// todo is the same as applying them all in order, and batches may commit in any order (two sinks)
/// without an older event overwriting a newer state.
public struct ProjectionWriter: Sendable {
    public let tables: ProjectionTables

    /// The statements for `tables`, built once: they are prepared per connection and found by their text.
    let applySQL: String
    let offsetSQL: String

    public init(tables: ProjectionTables = .live) {
        self.tables = tables
        applySQL = Self.applySQL(tables)
        offsetSQL = Self.offsetSQL(tables)
    }

    public struct Result: Sendable, Equatable {
        /// Events newly stored (the rest were already there).
        public var inserted: Int
        /// Todo rows created or changed.
        public var todosWritten: Int
    }

    /// First key of the advisory locks the sink takes per group.
    static let lockNamespace: Int32 = 0x5349_4E4B // "SINK"

    /// The staging table's columns, in COPY order: the event's envelope, each `TodoField` (by
    /// its declaration), then the todo's snapshot fields every todo event carries.
    static let envelopeColumns: [(name: String, type: String)] = [
        ("event_id", "text"), ("command_id", "text"), ("group_id", "text"), ("group_version", "bigint"), ("stream_seq", "bigint"),
        ("event_type", "text"), ("todo_id", "text"), ("actor_user_id", "text"), ("actor_name", "text"), ("payload", "text"),
        ("occurred_at", "timestamptz"),
    ]
    static let snapshotColumns: [(name: String, type: String)] = [
        ("created_by", "text"), ("created_by_name", "text"), ("created_at", "timestamptz"), ("version", "bigint"),
    ]
    static let stagingColumnTypes = envelopeColumns + TodoField.allCases.map { ($0.name, $0.stagingType) } + snapshotColumns
    static let stagingColumns = stagingColumnTypes.map(\.name)

    static let createStaging = """
        CREATE TEMP TABLE IF NOT EXISTS sink_staging (
            \(stagingColumnTypes.map { "\($0.name) \($0.type)" }.joined(separator: ", "))
        ) ON COMMIT DELETE ROWS
        """

    static let lockSQL = """
        SELECT pg_advisory_xact_lock(\(lockNamespace), hashtext(group_id))
        FROM (SELECT DISTINCT group_id FROM sink_staging) AS groups ORDER BY hashtext(group_id)
        """

    /// Must run inside a transaction (the staging rows vanish at commit).
    @discardableResult
    public func apply(_ batch: [ProjectedEvent], on connection: PostgresConnection) throws -> Result {
        guard !batch.isEmpty else { return Result(inserted: 0, todosWritten: 0) }
        try connection.execute(Self.createStaging + "; DELETE FROM sink_staging")
        try connection.copyBinary(into: "sink_staging", columns: Self.stagingColumns, rows: batch) { $0.writeStagingRow(to: &$1) }
        // Prepared once per connection: planning these statements cost as much as running them
        // on a small (live-rate) batch.
        try connection.queryPrepared(Self.lockSQL)
        let counts = try connection.queryPrepared(applySQL)
        try connection.queryPrepared(offsetSQL)
        var result = Result(inserted: try counts[0].decode(Int.self, "inserted"), todosWritten: try counts[0].decode(Int.self, "todos"))
        if batch.contains(where: { $0.event.eventType == .groupDeleted }) {
            let tombstoned = try connection.query("""
                UPDATE \(tables.todos) AS t SET deleted_at = s.occurred_at
                FROM sink_staging AS s
                WHERE s.event_type = 'group.deleted' AND t.group_id = s.group_id AND t.deleted_at IS NULL
                """)
            result.todosWritten += tombstoned.affectedRows
        }
        return result
    }

    static func applySQL(_ tables: ProjectionTables) -> String {
        """
        WITH inserted AS (
            INSERT INTO \(tables.events) (event_id, command_id, group_id, group_version, stream_seq, event_type, todo_id,
                                     actor_user_id, actor_name, payload, occurred_at)
            SELECT event_id, command_id, group_id, group_version, stream_seq, event_type, todo_id,
                   actor_user_id, actor_name, payload::json, occurred_at
            FROM sink_staging
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id
        ), latest AS (
            SELECT DISTINCT ON (s.group_id, s.todo_id) s.*
            FROM sink_staging AS s JOIN inserted USING (event_id)
            WHERE s.event_type IN ('todo.created', 'todo.updated', 'todo.moved', 'todo.deleted', 'todo.restored') AND s.todo_id IS NOT NULL
            ORDER BY s.group_id, s.todo_id, s.version DESC
        ), todos_written AS (
            INSERT INTO \(tables.todos) AS t (group_id, todo_id, \(TodoField.allCases.map(\.name).joined(separator: ", ")),
                                  created_by, created_by_name, created_at, updated_by, updated_by_name, updated_at,
                                  version, group_version, deleted_at)
            SELECT l.group_id, l.todo_id, \(TodoField.allCases.map(\.todosValue).joined(separator: ", ")),
                   coalesce(l.created_by, l.actor_user_id), coalesce(l.created_by_name, l.actor_name),
                   coalesce(l.created_at, l.occurred_at), l.actor_user_id, l.actor_name, l.occurred_at,
                   coalesce(l.version, 1), l.group_version,
                   CASE WHEN l.event_type = 'todo.deleted' THEN l.occurred_at
                        ELSE (SELECT min(d.occurred_at) FROM \(tables.events) AS d
                              WHERE d.group_id = l.group_id AND d.event_type = 'group.deleted') END
            FROM latest AS l
            ON CONFLICT (group_id, todo_id) DO UPDATE SET
                \(TodoField.allCases.map { "\($0.name) = EXCLUDED.\($0.name)" }.joined(separator: ", ")),
                created_by = EXCLUDED.created_by, created_by_name = EXCLUDED.created_by_name, created_at = EXCLUDED.created_at,
                updated_by = EXCLUDED.updated_by, updated_by_name = EXCLUDED.updated_by_name, updated_at = EXCLUDED.updated_at,
                version = EXCLUDED.version, group_version = EXCLUDED.group_version,
                deleted_at = EXCLUDED.deleted_at
            WHERE t.version < EXCLUDED.version
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM inserted)::int AS inserted, (SELECT count(*) FROM todos_written)::int AS todos
        """
    }

    /// Moves each touched group's offset to the end of the run of stored versions that starts
    /// right after it (the first stored version whose successor is missing), if the next version
    /// is stored at all. The common case, a batch holding a group's next versions without a gap,
    /// is answered from the staging rows alone; otherwise the stored events are walked (by index).
    ///
    /// Every lookup in the events and offsets tables is a scalar subquery on a unique key, run per
    /// group of the batch, so it can only be an index probe and the cost follows the batch, never
    /// the tables' size. (With `EXISTS` and a join, the planner could hash the whole events table
    /// and scan every offset instead; the staging table has no statistics, and the plan, prepared
    /// once, kept whichever choice suited the first batch: see the integration test
    /// `perBatchStatementsLookUpByIndexWhateverTheFirstBatchWas`.)
    static func offsetSQL(_ tables: ProjectionTables) -> String {
        """
        WITH staged AS (
            SELECT group_id, min(group_version) AS low, max(group_version) AS high,
                   count(DISTINCT group_version) AS versions
            FROM sink_staging
            GROUP BY group_id
        ), batch AS (
            SELECT s.*, coalesce((SELECT o.group_version FROM \(tables.offsets) AS o WHERE o.group_id = s.group_id), 0) AS current
            FROM staged AS s
        ), ends AS (
            SELECT b.group_id,
                   CASE WHEN b.low = b.current + 1 AND b.high - b.low + 1 = b.versions
                             AND (SELECT 1 FROM \(tables.events) AS n
                                  WHERE n.group_id = b.group_id AND n.group_version = b.high + 1) IS NULL
                        THEN b.high
                        ELSE (SELECT min(e.group_version) FROM \(tables.events) AS e
                              WHERE e.group_id = b.group_id AND e.group_version > b.current
                                AND (SELECT 1 FROM \(tables.events) AS n
                                     WHERE n.group_id = e.group_id AND n.group_version = e.group_version + 1) IS NULL)
                   END AS reached
            FROM batch AS b
            WHERE b.low = b.current + 1
               OR (SELECT 1 FROM \(tables.events) AS f WHERE f.group_id = b.group_id AND f.group_version = b.current + 1) IS NOT NULL
        )
        INSERT INTO \(tables.offsets) AS o (group_id, group_version, stream_seq, updated_at)
        SELECT ends.group_id, ends.reached,
               (SELECT e.stream_seq FROM \(tables.events) AS e WHERE e.group_id = ends.group_id AND e.group_version = ends.reached),
               now()
        FROM ends
        ON CONFLICT (group_id) DO UPDATE SET
            group_version = EXCLUDED.group_version, stream_seq = EXCLUDED.stream_seq, updated_at = EXCLUDED.updated_at
        WHERE o.group_version < EXCLUDED.group_version
        """
    }
}

extension TodoField {
    /// What the `todos` row takes for this field from the newest staged event `l` of the todo.
    var todosValue: String {
        switch self {
        case .title: "coalesce(l.title, '')"
        case .notes: "coalesce(l.notes, '')"
        case .status: "coalesce(l.status, 'todo')"
        case .dueDate: "l.due_date::date"
        case .assignee: "l.assignee"
        case .labels: "coalesce(l.labels, '{}')"
        case .position: "coalesce(l.position, 0)"
        }
    }
}
