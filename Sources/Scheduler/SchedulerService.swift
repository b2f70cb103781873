import Contracts
import Foundation
import Logging
import Metrics
import NATS
import Postgres
import ServiceLifecycle
import ServiceSupport
import Sharding

/// `todo scheduler` (DESIGN §9): keeps the due index and the notifications from its own durable
/// consumer on EVENTS, and fires what is due. Every replica does both: the consumer's batches are
/// split between them, and claims keep their firing apart.
///
/// After a batch's changes commit, each user who got a notification hears of it on
/// `app.notify.<shard>.user.<id>` (the NOTIFY stream); the batch is acknowledged after that, so a
/// crash in between replays the batch (the notifications are not written twice, the signal is
/// sent again, which only makes the streamer read the count once more).
public final class SchedulerService: Service {
    let configuration: SchedulerConfiguration
    let jetStream: JetStream
    let store: SchedulerStore
    let deadLetters: DeadLetterQueue
    let logger: Logger
    let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))

    private let indexed = Counter(label: "scheduler_events_total")
    private let notifications = Counter(label: "scheduler_notifications_signalled_total")
    private let signalFailures = Counter(label: "scheduler_signal_failures_total")
    private let retries = Counter(label: "scheduler_write_retries_total")

    public init(configuration: SchedulerConfiguration, connection: NATSConnection, pool: PostgresPool, logger: Logger) {
        self.configuration = configuration
        jetStream = connection.jetStream
        store = SchedulerStore(pool: pool)
        deadLetters = DeadLetterQueue(jetStream: connection.jetStream, prefix: Streams.deadLetterEventsPrefix)
        self.logger = logger
    }

    public var consumerConfig: ConsumerConfig {
        ConsumerConfig(durable: configuration.durable, ackWait: .seconds(30), maxDeliver: -1,
                       maxAckPending: configuration.batchSize * 4)
    }

    public func run() async throws {
        try await PipelineStreams.ensureAll(jetStream, replicas: configuration.shared.streamReplicas)
        let since = try await notificationsSince()
        let consumer = try await jetStream.pullConsumer(stream: Streams.events, config: consumerConfig)
        logger.info("scheduler consuming", metadata: ["consumer": "\(configuration.durable)", "notifications_since": "\(since)"])
        let loop = ConsumerLoop(consumer: consumer, batchSize: configuration.batchSize, expires: .seconds(1),
                                lagMetric: "scheduler_consumer_pending", logger: logger)
        let firer = ReminderFirer(store: store, jetStream: jetStream, configuration: configuration, logger: logger)
        let firing = Task { await firer.run() }
        await loop.run { await index($0, notifyingSince: since) }
        firing.cancel()
        await firing.value
        logger.info("scheduler stopped")
    }

    /// The first start's time (`SchedulerStore.notificationsSince`), waiting for Postgres.
    private func notificationsSince() async throws -> Date {
        var attempt = 0
        while true {
            do {
                return try await store.notificationsSince()
            } catch {
                attempt += 1
                if Task.isShuttingDownGracefully || Task.isCancelled { throw error }
                logger.warning("Postgres not reachable yet; retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                try await Task.sleep(for: backoff.delay(attempt: attempt))
            }
        }
    }

    /// Indexes one batch, signals the notified users, acknowledges. Returns without acknowledging
    /// only when stopping while Postgres still fails (the server redelivers later). Events from
    /// before `since` change the index but notify nobody.
    func index(_ batch: [JetStreamMessage], notifyingSince since: Date) async {
        var events: [TodoEvent] = []
        var handled: [JetStreamMessage] = []
        var valid: [JetStreamMessage] = []
        for message in batch {
            do {
                events += try EventMessage.decode(message.payload)
                valid.append(message)
            } catch {
                // The sink dead-letters undecodable events with their message; here they are only skipped.
                logger.warning("undecodable event skipped", metadata: ["subject": "\(message.subject)", "error": "\(error)"])
                handled.append(message)
            }
        }
        var changes = IndexChanges(events)
        changes.notifyOnly(since: since)
        var attempt = 0
        var notified = Set<String>()
        while true {
            do {
                notified = try await store.apply(changes)
                break
            } catch {
                attempt += 1
                retries.increment()
                logger.warning("indexing a batch failed; retrying", metadata: ["events": "\(events.count)", "attempt": "\(attempt)", "error": "\(error)"])
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                try? await valid.inProgressAll()
                try? await Task.sleep(for: backoff.delay(attempt: attempt))
            }
        }
        indexed.increment(by: events.count)
        await signal(notified, batchID: batch.first.map { "\($0.metadata.streamSequence)" } ?? "")
        do {
            try await (handled + valid).ackAll()
        } catch {
            logger.warning("acknowledging a batch failed; it will be redelivered", metadata: ["error": "\(error)"])
        }
    }

    /// Tells each user's streams that their notifications changed. A signal that cannot be stored
    /// after a few tries is reported (the user sees the count at their next page load or reconnect).
    private func signal(_ users: Set<String>, batchID: String) async {
        guard !users.isEmpty else { return }
        var messages: [OutgoingMessage] = []
        for user in users {
            guard let subject = try? UserSubject(userID: user).subject else { continue }
            messages.append(OutgoingMessage(subject: subject, payload: NotificationSignal.created, msgID: "n-\(batchID)-\(user)"))
        }
        for attempt in 1...3 {
            let results = await jetStream.publishBatch(messages)
            let failed = zip(messages, results).compactMap { message, result in if case .failure = result { message } else { nil } }
            notifications.increment(by: messages.count - failed.count)
            guard !failed.isEmpty else { return }
            messages = failed
            if attempt == 3 {
                signalFailures.increment(by: failed.count)
                logger.warning("notification signals not stored", metadata: ["users": "\(failed.count)"])
                return
            }
            try? await Task.sleep(for: backoff.delay(attempt: attempt))
        }
    }
}
