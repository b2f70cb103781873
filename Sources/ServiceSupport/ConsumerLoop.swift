import Logging
import Metrics
import NATS
import ServiceLifecycle

/// The fetch loop every consumer service runs: fetch a batch, hand it over, repeat until a
/// graceful shutdown (or cancellation), reporting the consumer's lag every few seconds. A failed
/// fetch (NATS unavailable) is logged and retried with backoff.
///
/// With `prefetch`, the next batch is fetched while the current one is handled, so the consumer
/// never waits for the server between batches (batches are still handled one after the other).
/// A prefetched batch left over at shutdown is handed back (nak) for immediate redelivery.
public struct ConsumerLoop: Sendable {
    public let consumer: PullConsumer
    public let batchSize: Int
    public let expires: Duration
    public let prefetch: Bool
    public let lag: Gauge
    public let logger: Logger

    public init(consumer: PullConsumer, batchSize: Int, expires: Duration, prefetch: Bool = false, lagMetric: String,
                logger: Logger) {
        self.consumer = consumer
        self.batchSize = batchSize
        self.expires = expires
        self.prefetch = prefetch
        lag = Gauge(label: lagMetric)
        self.logger = logger
    }

    /// Runs until shutdown; `handle` must finish (acknowledge or leave for redelivery) its batch.
    public func run(_ handle: ([JetStreamMessage]) async -> Void) async {
        let backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        var failures = 0
        var lastLagReport = ContinuousClock.now - .seconds(10)
        var prefetched: Task<[JetStreamMessage], any Error>?
        let (consumer, batchSize, expires) = (self.consumer, self.batchSize, self.expires)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let pending = prefetched
                prefetched = nil
                let batch: [JetStreamMessage]
                if let pending { batch = try await pending.value } else { batch = try await consumer.fetch(batch: batchSize, expires: expires) }
                failures = 0
                if prefetch && !batch.isEmpty {
                    prefetched = Task { try await consumer.fetch(batch: batchSize, expires: expires) }
                }
                if !batch.isEmpty { await handle(batch) }
            } catch {
                failures += 1
                logger.warning("fetch failed; retrying", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                try? await Task.sleep(for: backoff.delay(attempt: failures))
            }
            if ContinuousClock.now - lastLagReport > .seconds(5) {
                lastLagReport = .now
                if let info = try? await consumer.info() { lag.record(Double(info.pending)) }
            }
        }
        if let leftover = try? await prefetched?.value, !leftover.isEmpty {
            try? await leftover.nakAll()
        }
        await consumer.close()
    }
}
