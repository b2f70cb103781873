import Contracts
import Foundation
import Logging
import Metrics
import Postgres

/// Deletes the rows of todos that have been in the trash longer than `Trash.retention` (DESIGN
/// §10), every `interval` (`TRASH_PURGE_SECONDS`, default 3600), in slices so no statement holds
/// many row locks. Their events stay in `todo_events`: the history and an export keep them. The
/// engine refuses to restore such a todo, so no event brings the row back. Every sink replica may
/// run it: the deletes are idempotent and skip rows another replica has locked.
struct TrashPurge: Sendable {
    let pool: PostgresPool
    let tables: ProjectionTables
    let interval: Duration
    let logger: Logger
    static let slice = 5000

    private let purged = Counter(label: "sink_trash_purged_todos_total")

    init(pool: PostgresPool, tables: ProjectionTables = .live, interval: Duration, logger: Logger) {
        self.pool = pool
        self.tables = tables
        self.interval = interval
        self.logger = logger
    }

    /// Deletes every todo deleted before `now - Trash.retention`; returns how many.
    @discardableResult
    func purge(now: Date = Date()) async throws -> Int {
        let cutoff = now.addingTimeInterval(-Trash.retention)
        var total = 0
        while true {
            let count = try await pool.withConnection { connection in
                try connection.query("""
                    DELETE FROM \(tables.todos) WHERE ctid = ANY(ARRAY(
                        SELECT ctid FROM \(tables.todos) WHERE deleted_at IS NOT NULL AND deleted_at < $1
                        LIMIT \(Self.slice) FOR UPDATE SKIP LOCKED))
                    """, cutoff).affectedRows
            }
            total += count
            if count > 0 { purged.increment(by: count) }
            if count < Self.slice { return total }
        }
    }

    /// Purges until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            do {
                let count = try await purge()
                if count > 0 { logger.info("trash purged", metadata: ["todos": "\(count)"]) }
            } catch {
                logger.warning("trash purge failed; trying again next time", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
