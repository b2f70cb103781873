import Contracts
import Foundation
import Logging
import Metrics
import NATS
import Postgres
import ServiceLifecycle
import ServiceSupport
import Sharding

/// The sink's consumer loop: fetch up to `batchSize` events (or what arrived within `batchWait`),
/// write them in one transaction, acknowledge after commit. When Postgres is down it retries the
/// same batch with backoff (keeping the messages in progress), so nothing is acknowledged early
/// and nothing is lost. Undecodable events go to `app.dlq.events.…`.
public final class DataSinkService: Service {
    let configuration: DataSinkConfiguration
    let jetStream: JetStream
    let pool: PostgresPool
    let writer: ProjectionWriter
    let deadLetters: DeadLetterQueue
    let logger: Logger
    let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))

    private let eventsInserted = Counter(label: "sink_events_total", dimensions: [("result", "inserted")])
    private let eventsDuplicate = Counter(label: "sink_events_total", dimensions: [("result", "duplicate")])
    private let batchSizes = Recorder(label: "sink_batch_size")
    private let batchLatency = Timer(label: "sink_batch_duration_seconds")
    /// From an event being stored in EVENTS to its row being committed (the projection's lag).
    private let eventToRow = Timer(label: "sink_event_to_row_seconds")
    private let retries = Counter(label: "sink_write_retries_total")
    private let failedProjections = Counter(label: "sink_failed_projections_total")

    public init(configuration: DataSinkConfiguration, connection: NATSConnection, pool: PostgresPool, logger: Logger,
                tables: ProjectionTables = .live) {
        self.configuration = configuration
        jetStream = connection.jetStream
        self.pool = pool
        writer = ProjectionWriter(tables: tables)
        deadLetters = DeadLetterQueue(jetStream: connection.jetStream, prefix: Streams.deadLetterEventsPrefix)
        self.logger = logger
    }

    public var consumerConfig: ConsumerConfig {
        // No filter subject: EVENTS holds only event subjects anyway, and nats-server 2.9 counts a
        // filtered consumer's pending messages by scanning the stream's blocks (PipelineStreams).
        ConsumerConfig(durable: configuration.durable, ackWait: configuration.ackWait,
                       maxDeliver: -1, maxAckPending: max(configuration.batchSize * 4, 2000))
    }

    public func run() async throws {
        try await PipelineStreams.ensureAll(jetStream, replicas: configuration.shared.streamReplicas)
        let consumer = try await jetStream.pullConsumer(stream: Streams.events, config: consumerConfig)
        logger.info("data-sink consuming", metadata: ["consumer": "\(configuration.durable)"])
        // Prefetching is safe here: batches may commit in any order (the writer is version-guarded).
        // A batch stays open for `batchWait` to gather what arrives meanwhile: each batch is a
        // transaction, and fetches return as soon as anything is there (at 500 events/s, ~5 per
        // fetch: ~100 transactions a second instead of 20).
        let loop = ConsumerLoop(consumer: consumer, batchSize: configuration.batchSize, expires: configuration.batchWait,
                                prefetch: true, gatherWindow: configuration.batchWait, lagMetric: "sink_consumer_pending",
                                logger: logger)
        let gauges = Task { [jetStream, pool, logger] in await BacklogGauges(jetStream: jetStream, pool: pool, logger: logger).run() }
        let purge = Task { [pool, writer, configuration, logger] in
            await TrashPurge(pool: pool, tables: writer.tables, interval: configuration.trashPurgeInterval, logger: logger).run()
        }
        await loop.run { await write($0) }
        gauges.cancel()
        purge.cancel()
        logger.info("data-sink stopped")
    }

    /// Writes one batch and acknowledges it. Returns without acknowledging only when the service
    /// is stopping while Postgres is still failing (the server redelivers later).
    func write(_ batch: [JetStreamMessage]) async {
        let start = ContinuousClock.now
        // Split by group into `writers` parts, decoded and written in parallel. A small batch (the
        // live rate: whatever arrived within `batchWait`) is one transaction: each transaction has
        // a fixed cost in Postgres that a few dozen events do not pay back.
        let parts = batch.count >= Self.parallelBatchSize ? configuration.writers : 1
        var partitions = [[JetStreamMessage]](repeating: [], count: parts)
        for message in batch {
            partitions[parts == 1 ? 0 : Self.partition(of: message.subject, parts: parts)].append(message)
        }
        let results = await withTaskGroup(of: [JetStreamMessage]?.self) { group in
            for partition in partitions where !partition.isEmpty {
                group.addTask { await self.writePart(partition) }
            }
            return await group.reduce(into: [[JetStreamMessage]?]()) { $0.append($1) }
        }
        batchSizes.record(batch.count)
        // Nothing is acknowledged unless every part is stored (or dead-lettered): a part left
        // unwritten at shutdown takes the rest with it, and redelivered events are skipped as duplicates.
        guard results.allSatisfy({ $0 != nil }) else { return }
        do {
            try await results.flatMap { $0 ?? [] }.ackAll()
        } catch {
            logger.warning("acknowledging a batch failed; it will be redelivered and skipped as duplicates",
                           metadata: ["error": "\(error)"])
        }
        batchLatency.record(ContinuousClock.now - start)
    }

    /// Decodes and writes one part; returns the messages to acknowledge (stored or dead-lettered),
    /// or nil when the part could not be written before shutdown.
    private func writePart(_ messages: [JetStreamMessage]) async -> [JetStreamMessage]? {
        var events: [ProjectedEvent] = []
        /// The message of each event (a run's events share one).
        var carriers: [JetStreamMessage] = []
        var valid: [JetStreamMessage] = []
        var handled: [JetStreamMessage] = []
        events.reserveCapacity(messages.count)
        for message in messages {
            do {
                let unpacked = try ProjectedEvent.all(in: message.payload, streamSequence: message.metadata.streamSequence)
                events += unpacked
                carriers += repeatElement(message, count: unpacked.count)
                valid.append(message)
            } catch {
                if await deadLetters.deadLetter(message, logger: logger, reason: "undecodable event: \(error)") { handled.append(message) }
            }
        }
        if !events.isEmpty {
            guard await writeWithRetry(events, messages: valid, carriers: carriers) else { return nil }
            let committed = Date()
            for message in valid { eventToRow.recordSeconds(max(0, committed.timeIntervalSince(message.metadata.timestamp))) }
            handled += valid
        }
        return handled
    }

    /// The smallest batch split over parallel writers.
    static let parallelBatchSize = 1000

    /// Which part a message belongs to: by its group (the subject's last token), so one group's
    /// events always go to the same transaction.
    static func partition(of subject: String, parts: Int) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in subject.utf8.reversed() {
            if byte == UInt8(ascii: ".") { break }
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        return Int(hash % UInt32(parts))
    }

    private func writeWithRetry(_ events: [ProjectedEvent], messages: [JetStreamMessage], carriers: [JetStreamMessage]) async -> Bool {
        var attempt = 0
        while true {
            do {
                let writer = self.writer
                let result = try await pool.withTransaction { try writer.apply(events, on: $0) }
                eventsInserted.increment(by: result.inserted)
                eventsDuplicate.increment(by: events.count - result.inserted)
                return true
            } catch {
                attempt += 1
                retries.increment()
                let refused = (error as? PostgresError)?.isRefusedData ?? false
                logger.warning("writing a batch failed; retrying", metadata: [
                    "events": "\(events.count)", "attempt": "\(attempt)", "error": "\(error)"])
                if refused && attempt >= 3 {
                    // The same batch keeps failing on the server: find the event at fault (a
                    // batch of one included: it is recorded as failed, not retried forever).
                    return await writeOneByOne(events, carriers: carriers)
                }
                if Task.isShuttingDownGracefully || Task.isCancelled { return false }
                try? await messages.inProgressAll()
                try? await Task.sleep(for: backoff.delay(attempt: attempt))
            }
        }
    }

    /// Records an event Postgres refuses as a failed projection, with its stand-in (see
    /// `FailedProjection`); false when that failed too.
    private func recordFailed(_ event: ProjectedEvent, error: any Error, message: JetStreamMessage) async -> Bool {
        let writer = self.writer
        let reason = "\(error)"
        do {
            try await pool.withTransaction { try FailedProjection.record(event, error: reason, writer: writer, on: $0) }
        } catch {
            logger.error("recording a failed projection failed", metadata: message.logContext.merging(["error": "\(error)"]) { $1 })
            return false
        }
        failedProjections.increment()
        logger.error("event could not be projected; recorded in failed_projections, group moves on",
                     metadata: message.logContext.merging(["group.version": "\(event.event.groupVersion)", "error": "\(reason)"]) { $1 })
        return true
    }

    /// Each event in its own transaction; one whose values the server refuses every time (a data
    /// or constraint error) is recorded as a failed projection.
    private func writeOneByOne(_ events: [ProjectedEvent], carriers: [JetStreamMessage]) async -> Bool {
        for (event, message) in zip(events, carriers) {
            var attempt = 0
            while true {
                do {
                    let writer = self.writer
                    let result = try await pool.withTransaction { try writer.apply([event], on: $0) }
                    eventsInserted.increment(by: result.inserted)
                    break
                } catch {
                    attempt += 1
                    // Only values the server refuses as such become a failed projection; any other
                    // error (disk full, a timeout, a read-only standby) is waited out.
                    let refused = (error as? PostgresError)?.isRefusedData ?? false
                    if refused && attempt >= 3 {
                        if await recordFailed(event, error: error, message: message) { break }
                        // Not even the stand-in could be written: park the event (with its message) in the DLQ.
                        guard await deadLetters.deadLetter(message, logger: logger, reason: "refused by Postgres: \(error)") else { return false }
                        break
                    }
                    if Task.isShuttingDownGracefully || Task.isCancelled { return false }
                    try? await message.inProgress()
                    try? await Task.sleep(for: backoff.delay(attempt: attempt))
                }
            }
        }
        return true
    }
}
