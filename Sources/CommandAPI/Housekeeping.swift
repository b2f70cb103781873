import Foundation
import Logging
import Metrics
import Postgres
import ServiceLifecycle

/// Deletes what command-api no longer needs, every `interval` (`HOUSEKEEPING_SECONDS`, default
/// 300), in small slices so no sweep holds locks for long:
///
/// - `Idempotency-Key` records older than the 24 h they are promised for;
/// - refresh tokens past their expiry, and rotated or revoked ones a day after that happened
///   (presenting a rotated token within that day still revokes its family: reuse detection);
/// - outbox rows published more than an hour ago;
/// - revoked sessions whose last access token has expired.
///
/// Every replica may run it; the deletes are idempotent and skip rows another sweep has locked.
public final class Housekeeping: Service, Sendable {
    let pool: PostgresPool
    let interval: Duration
    let logger: Logger
    static let slice = 5000

    /// Each statement deletes at most `slice` rows and returns how many it deleted.
    static let statements: [(table: String, sql: String)] = [
        ("idempotency_keys", """
            DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM idempotency_keys WHERE created_at < now() - interval '24 hours'
                LIMIT \(slice) FOR UPDATE SKIP LOCKED))
            """),
        ("refresh_tokens", """
            DELETE FROM refresh_tokens WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM refresh_tokens
                WHERE expires_at < now() OR coalesce(revoked_at, rotated_at) < now() - interval '1 day'
                LIMIT \(slice) FOR UPDATE SKIP LOCKED))
            """),
        ("command_outbox", """
            DELETE FROM command_outbox WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM command_outbox WHERE published_at < now() - interval '1 hour'
                LIMIT \(slice) FOR UPDATE SKIP LOCKED))
            """),
        ("revoked_sessions", """
            DELETE FROM revoked_sessions WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM revoked_sessions WHERE expires_at < now()
                LIMIT \(slice) FOR UPDATE SKIP LOCKED))
            """),
    ]

    public init(pool: PostgresPool, interval: Duration, logger: Logger) {
        self.pool = pool
        self.interval = interval
        self.logger = logger
    }

    /// One sweep: every table until nothing more is due. Returns the rows deleted per table.
    @discardableResult
    public func sweep() async throws -> [String: Int] {
        var deleted: [String: Int] = [:]
        for (table, sql) in Self.statements {
            while true {
                let count = try await pool.withConnection { try $0.query(sql).affectedRows }
                deleted[table, default: 0] += count
                if count > 0 { Counter(label: "housekeeping_rows_deleted_total", dimensions: [("table", table)]).increment(by: count) }
                if count < Self.slice { break }
            }
        }
        return deleted
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let deleted = try await self.sweep()
                    if deleted.values.contains(where: { $0 > 0 }) {
                        self.logger.info("housekeeping", metadata: deleted.mapValues { "\($0)" })
                    }
                } catch {
                    self.logger.warning("housekeeping failed; trying again next time", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.interval)
            }
        }
    }
}
