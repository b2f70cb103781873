import Contracts
import Foundation
import Logging
import Metrics
import NATS
import ServiceLifecycle
import Synchronization
import ServiceSupport
import Sharding

/// The engine's consumer loop: fetch a batch of commands, work on its groups in parallel (each
/// group's commands strictly in order), acknowledge each command only after its outcome event is
/// stored, then fetch the next batch. On SIGTERM it finishes the batch in hand and stops.
public final class DomainEngineService: Service {
    let configuration: DomainEngineConfiguration
    let connection: NATSConnection
    let jetStream: JetStream
    let processor: CommandProcessor
    let deadLetters: DeadLetterQueue
    let logger: Logger
    let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))

    private let batchSizes = Recorder(label: "engine_batch_size")
    private let latency = Timer(label: "engine_command_duration_seconds")
    /// From the command being stored in COMMANDS to its outcome being stored in EVENTS.
    private let commandToEvent = Timer(label: "engine_command_to_event_seconds")
    private let failures = Counter(label: "engine_transient_failures_total")
    /// Consumer sequence of the last delivery seen and the current delivery epoch (see
    /// `CommandProcessor.Delivery.epoch`). Only the fetch loop touches them.
    private let deliveryTracking = Mutex((lastConsumerSequence: UInt64(0), epoch: UInt64(1)))

    public init(configuration: DomainEngineConfiguration, connection: NATSConnection, logger: Logger) {
        self.configuration = configuration
        self.connection = connection
        jetStream = connection.jetStream
        self.logger = logger
        processor = CommandProcessor(store: JetStreamEventStore(jetStream: connection.jetStream, logger: logger),
                                     cache: GroupStateCache(capacity: configuration.cacheCapacity), logger: logger,
                                     limits: configuration.shared.limits)
        deadLetters = DeadLetterQueue(jetStream: connection.jetStream, prefix: Streams.deadLetterCommandsPrefix)
    }

    public var consumerConfig: ConsumerConfig {
        // No filter subject: COMMANDS holds only command subjects (see PipelineStreams).
        ConsumerConfig(durable: configuration.durable,
                       ackWait: configuration.ackWait, maxDeliver: configuration.maxDeliver,
                       maxAckPending: max(configuration.batchSize * 4, 1000))
    }

    public func run() async throws {
        try await PipelineStreams.ensureAll(jetStream, replicas: configuration.shared.streamReplicas)
        let consumer = try await jetStream.pullConsumer(stream: Streams.commands, config: consumerConfig)
        let giveUps = try await MaxDeliveriesWatcher(connection: connection, stream: Streams.commands,
                                                     durable: configuration.durable, deadLetters: deadLetters, logger: logger)
        logger.info("domain-engine consuming", metadata: ["consumer": "\(configuration.durable)"])
        // Prefetching keeps order: batches are still handled one after the other, in fetch order.
        let loop = ConsumerLoop(consumer: consumer, batchSize: configuration.batchSize, expires: .seconds(1),
                                prefetch: true, lagMetric: "engine_consumer_pending", logger: logger)
        await loop.run { batch in
            batchSizes.record(batch.count)
            await process(batch)
        }
        await giveUps.stop()
        logger.info("domain-engine stopped")
    }

    /// Processes one fetched batch; returns when every message is acknowledged or left for
    /// redelivery (only when shutting down in the middle of a retry).
    func process(_ batch: [JetStreamMessage]) async {
        // Any gap in consumer sequences means another replica received messages in between (or
        // this process restarted): groups must re-check their order before deciding.
        // Each message gets the epoch current at its position: a gap just before it (a delivery
        // that went elsewhere) starts a new epoch, so a group whose commands straddle the gap
        // re-checks its order.
        let epochs = deliveryTracking.withLock { tracking -> [ObjectIdentifier: UInt64] in
            var epochs: [ObjectIdentifier: UInt64] = [:]
            for message in batch {
                let sequence = message.metadata.consumerSequence
                if sequence != tracking.lastConsumerSequence + 1 { tracking.epoch += 1 }
                tracking.lastConsumerSequence = sequence
                epochs[ObjectIdentifier(message)] = tracking.epoch
            }
            return epochs
        }
        // Partition by subject, keeping stream order inside each group.
        var order: [String] = []
        var byGroup: [String: [JetStreamMessage]] = [:]
        for message in batch {
            let key = message.subject
            if byGroup[key] == nil { order.append(key) }
            byGroup[key, default: []].append(message)
        }
        var done: [JetStreamMessage] = []
        var index = 0
        while index < order.count {
            let slice = order[index..<min(index + configuration.groupConcurrency, order.count)]
            index += slice.count
            await withTaskGroup(of: [JetStreamMessage].self) { tasks in
                for key in slice {
                    let messages = byGroup[key]!
                    tasks.addTask { await self.processGroup(messages, epochs: epochs) }
                }
                for await handled in tasks { done += handled }
            }
        }
        do {
            try await done.ackAll()
        } catch {
            // Unacknowledged commands come back after ackWait; their outcomes exist, so the
            // redelivery is recognised as already decided.
            logger.warning("acknowledging a batch failed", metadata: ["error": "\(error)"])
        }
    }

    /// One group's commands, in order. Returns the messages that are finished (to acknowledge).
    private func processGroup(_ messages: [JetStreamMessage], epochs: [ObjectIdentifier: UInt64]) async -> [JetStreamMessage] {
        var finished: [JetStreamMessage] = []
        for message in messages {
            switch await processOne(message, epoch: epochs[ObjectIdentifier(message)] ?? 0) {
            case .finished:
                finished.append(message)
            case .interrupted:
                // Keep order: the rest waits for redelivery, and the group's state is re-checked then.
                if let group = try? GroupSubject(parsing: message.subject) { processor.forget(group.groupID.rawValue) }
                return finished
            }
        }
        return finished
    }

    private enum Progress {
        case finished
        case interrupted
    }

    /// Retries transient failures in place (keeping the group's order), telling the server the
    /// command is still in progress.
    private func processOne(_ message: JetStreamMessage, epoch: UInt64) async -> Progress {
        let start = ContinuousClock.now
        let metadata = message.metadata
        let delivery = CommandProcessor.Delivery(subject: message.subject, payload: message.payload,
                                                 streamSequence: metadata.streamSequence, epoch: epoch,
                                                 redelivered: metadata.deliveryCount > 1)
        var attempt = 0
        while true {
            do {
                switch try await processor.handle(delivery) {
                case .decided:
                    latency.record(ContinuousClock.now - start)
                    commandToEvent.recordSeconds(max(0, Date().timeIntervalSince(metadata.timestamp)))
                    return .finished
                case .deadLetter(let reason):
                    return await deadLetters.deadLetter(message, logger: logger, reason: reason) ? .finished : .interrupted
                }
            } catch {
                attempt += 1
                failures.increment()
                logger.warning("command failed; retrying", metadata: message.logContext.merging([
                    "attempt": "\(attempt)", "error": "\(error)"]) { $1 })
                if Task.isShuttingDownGracefully || Task.isCancelled { return .interrupted }
                if metadata.deliveryCount >= UInt64(configuration.maxDeliver) && attempt >= 3 {
                    return await deadLetters.deadLetter(message, logger: logger, reason: "failed on its last delivery: \(error)") ? .finished : .interrupted
                }
                try? await message.inProgress()
                try? await Task.sleep(for: backoff.delay(attempt: attempt))
            }
        }
    }
}

