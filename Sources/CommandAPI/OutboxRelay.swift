import Foundation
import Logging
import Metrics
import Postgres
import ServiceLifecycle
import Synchronization

/// Publishes the membership commands of `command_outbox` to JetStream, per group in outbox order,
/// and marks them published.
///
/// A request that committed a membership change asks for its group to be relayed at once and waits
/// for it, so a new member's `member.added` reaches the engine before the member's first todo
/// command can. A sweep publishes whatever is left (NATS was down, the process died between commit
/// and publish). Nothing is lost: a row stays until JetStream acknowledged it. Nothing is doubled:
/// the message id is the command id (JetStream drops a repeat inside its window; the engine remembers
/// the command ids it decided, beyond it).
public final class OutboxRelay: Service, Sendable {
    let pool: PostgresPool
    let publisher: any CommandPublishing
    let logger: Logger
    let sweepInterval: Duration
    /// Groups being relayed by this process, and whether another pass was asked for meanwhile.
    private let running = Mutex<[String: Bool]>([:])
    private let relayed = Counter(label: "outbox_relayed_total")
    private let failed = Counter(label: "outbox_relay_failures_total")

    public init(pool: PostgresPool, publisher: any CommandPublishing, logger: Logger, sweepInterval: Duration = .seconds(1)) {
        self.pool = pool
        self.publisher = publisher
        self.logger = logger
        self.sweepInterval = sweepInterval
    }

    /// Relays the group's unpublished rows, in order; returns true when none is left. One pass per
    /// group at a time in this process; a request arriving during a pass gets one more pass.
    @discardableResult
    public func relay(groupID: String) async -> Bool {
        let first = running.withLock { running -> Bool in
            if running[groupID] != nil {
                running[groupID] = true
                return false
            }
            running[groupID] = false
            return true
        }
        guard first else {
            // Wait for the running pass (which will run again for us) to finish.
            while running.withLock({ $0[groupID] != nil }) { try? await Task.sleep(for: .milliseconds(2)) }
            return await pendingCount(groupID: groupID) == 0
        }
        var done = false
        while true {
            done = await pass(groupID: groupID)
            let again = running.withLock { running -> Bool in
                if running[groupID] == true {
                    running[groupID] = false
                    return true
                }
                running[groupID] = nil
                return false
            }
            if !again { return done }
        }
    }

    private func pass(groupID: String) async -> Bool {
        do {
            let rows = try await pool.withConnection { connection in
                try connection.query("""
                    SELECT outbox_id, command_id, subject, payload::text AS payload FROM command_outbox
                    WHERE group_id = $1 AND published_at IS NULL ORDER BY outbox_id LIMIT 500
                    """, groupID)
                .map { row in
                    (id: try row.decode(Int64.self, "outbox_id"), commandID: try row.decode(String.self, "command_id"),
                     subject: try row.decode(String.self, "subject"), payload: try row.decode(String.self, "payload"))
                }
            }
            var published: [Int64] = []
            var failure: (any Error)?
            for row in rows {
                do {
                    _ = try await publisher.publish(subject: row.subject, payload: Data(row.payload.utf8), messageID: row.commandID)
                    published.append(row.id)
                } catch {
                    failure = error
                    failed.increment()
                    let id = row.id
                    let message = String(describing: error)
                    try? await pool.withConnection { connection in
                        _ = try connection.query(
                            "UPDATE command_outbox SET attempts = attempts + 1, last_error = $2 WHERE outbox_id = $1", id, message)
                    }
                    logger.warning("outbox relay could not publish; will retry",
                                   metadata: ["group_id": "\(groupID)", "command_id": "\(row.commandID)", "error": "\(error)"])
                    break // keep the group's order: nothing after a failed row
                }
            }
            if !published.isEmpty {
                let ids = published
                try await pool.withConnection { connection in
                    _ = try connection.query("""
                        UPDATE command_outbox SET published_at = now(), attempts = attempts + 1 WHERE outbox_id = ANY($1)
                        """, ids)
                }
                relayed.increment(by: ids.count)
            }
            return failure == nil && rows.count < 500
        } catch {
            logger.warning("outbox relay could not read or mark rows; will retry", metadata: ["group_id": "\(groupID)", "error": "\(error)"])
            return false
        }
    }

    private func pendingCount(groupID: String) async -> Int {
        (try? await pool.withConnection { connection in
            try connection.query("SELECT count(*) AS n FROM command_outbox WHERE group_id = $1 AND published_at IS NULL", groupID)
                .first?.decode(Int.self, "n") ?? 0
        }) ?? 1
    }

    /// Relays every group with unpublished rows, oldest first.
    public func sweep() async {
        guard let groups = try? await pool.withConnection({ connection in
            try connection.query("""
                SELECT group_id FROM command_outbox WHERE published_at IS NULL
                GROUP BY group_id ORDER BY min(outbox_id) LIMIT 1000
                """).map { try $0.decode(String.self, "group_id") }
        }) else { return }
        for group in groups { await relay(groupID: group) }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.sweep()
                try? await Task.sleep(for: self.sweepInterval)
            }
        }
    }
}
