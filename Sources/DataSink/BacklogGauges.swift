import Foundation
import Logging
import Metrics
import NATS
import Postgres
import ServiceSupport

/// What operators watch besides the flow (docs/operations.md), sampled every `interval` by each
/// sink replica (dashboards take the maximum):
/// - `dlq_messages`: dead letters waiting in the DLQ stream (`todo dlq list`);
/// - `sink_failed_projections`: events recorded in `failed_projections` (their groups went on
///   with a `projection_failed` stand-in; `todo rebuild-projection` tries them again).
struct BacklogGauges: Sendable {
    let deadLetters: DeadLetterAdmin
    let pool: PostgresPool
    let interval: Duration
    let logger: Logger

    private let dlqDepth = Gauge(label: "dlq_messages")
    private let failedProjections = Gauge(label: "sink_failed_projections")

    init(jetStream: JetStream, pool: PostgresPool, interval: Duration = .seconds(15), logger: Logger) {
        deadLetters = DeadLetterAdmin(jetStream: jetStream)
        self.pool = pool
        self.interval = interval
        self.logger = logger
    }

    func sample() async {
        do {
            dlqDepth.record(Double(try await deadLetters.depth()))
        } catch {
            logger.debug("DLQ depth not sampled", metadata: ["error": "\(error)"])
        }
        do {
            let rows = try await pool.query("SELECT count(*)::bigint AS n FROM failed_projections")
            failedProjections.record(Double(try rows[0].decode(Int64.self, "n")))
        } catch {
            logger.debug("failed projections not counted", metadata: ["error": "\(error)"])
        }
    }

    /// Samples until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            await sample()
            try? await Task.sleep(for: interval)
        }
    }
}
