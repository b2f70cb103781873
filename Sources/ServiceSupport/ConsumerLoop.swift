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
///
/// A fetch returns as soon as anything is there (libnats first asks for what is available now):
/// under a live load that is a few messages per fetch. With a `gatherWindow`, a batch smaller
/// than `batchSize` stays open that long after it was fetched and takes what arrived meanwhile,
/// so a consumer whose every batch has a fixed cost (the sink's transaction) pays it a bounded
/// number of times per second, at the price of that much latency.
public struct ConsumerLoop: Sendable {
    public let consumer: PullConsumer
    public let batchSize: Int
    public let expires: Duration
    public let prefetch: Bool
    public let gatherWindow: Duration?
    public let lag: Gauge
    public let logger: Logger

    public init(consumer: PullConsumer, batchSize: Int, expires: Duration, prefetch: Bool = false,
                gatherWindow: Duration? = nil, lagMetric: String, logger: Logger) {
        self.consumer = consumer
        self.batchSize = batchSize
        self.expires = expires
        self.prefetch = prefetch
        self.gatherWindow = gatherWindow
        lag = Gauge(label: lagMetric)
        self.logger = logger
    }

    /// One batch: what a fetch returns (waiting up to `expires` for the first message), then, with
    /// a gathering window, what else arrived until the window closed, up to `batchSize`.
    func nextBatch() async throws -> [JetStreamMessage] {
        let batch = try await consumer.fetch(batch: batchSize, expires: expires)
        guard let gatherWindow, !batch.isEmpty, batch.count < batchSize else { return batch }
        try? await Task.sleep(for: gatherWindow)
        // What is there now; a failure here leaves the batch as it is (the rest comes next time).
        guard let more = try? await consumer.fetchAvailable(batch: batchSize - batch.count, answerWithin: .milliseconds(10))
        else { return batch }
        return batch + more
    }

    /// Runs until shutdown; `handle` must finish (acknowledge or leave for redelivery) its batch.
    public func run(_ handle: ([JetStreamMessage]) async -> Void) async {
        let backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        var failures = 0
        var lastLagReport = ContinuousClock.now - .seconds(10)
        var prefetched: Task<[JetStreamMessage], any Error>?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let pending = prefetched
                prefetched = nil
                let batch: [JetStreamMessage]
                if let pending { batch = try await pending.value } else { batch = try await nextBatch() }
                failures = 0
                if prefetch && !batch.isEmpty {
                    prefetched = Task { try await nextBatch() }
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
