import Contracts
import Foundation
import Logging
import Metrics
import NATS
import ServiceLifecycle
import Synchronization
import ServiceSupport
import Sharding

/// The engine's consumer loop. Fetching runs ahead of deciding: fetched commands are queued per
/// group (`CommandLanes`), up to `maxHeld` of them, and workers take them a run per group at a
/// time, in turn, so a group with a backlog delays only itself. Each run's outcomes are appended
/// in one message; its commands are acknowledged only after that. On SIGTERM the runs in hand are
/// finished and everything still queued is handed back for redelivery.
public final class DomainEngineService: Service {
    let configuration: DomainEngineConfiguration
    let connection: NATSConnection
    let jetStream: JetStream
    let processor: CommandProcessor
    let deadLetters: DeadLetterQueue
    let lanes: CommandLanes<Queued>
    let logger: Logger
    let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))

    /// A held command and the delivery epoch it was fetched in.
    struct Queued: Sendable {
        let message: JetStreamMessage
        let epoch: UInt64
    }

    private let batchSizes = Recorder(label: "engine_batch_size")
    private let runSizes = Recorder(label: "engine_run_size")
    private let heldGauge = Gauge(label: "engine_commands_held")
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
                                     limits: configuration.shared.limits, handoffWait: configuration.handoffWait)
        deadLetters = DeadLetterQueue(jetStream: connection.jetStream, prefix: Streams.deadLetterCommandsPrefix)
        lanes = CommandLanes(maxHeld: configuration.maxHeld, runLength: EventMessage.maxEvents)
    }

    public var consumerConfig: ConsumerConfig {
        // No filter subject: COMMANDS holds only command subjects (see PipelineStreams). Room for
        // two replicas' held commands and a batch in flight each.
        ConsumerConfig(durable: configuration.durable,
                       ackWait: configuration.ackWait, maxDeliver: configuration.maxDeliver,
                       maxAckPending: 2 * (configuration.maxHeld + configuration.batchSize))
    }

    public func run() async throws {
        try await PipelineStreams.ensureAll(jetStream, replicas: configuration.shared.streamReplicas)
        let consumer = try await jetStream.pullConsumer(stream: Streams.commands, config: consumerConfig)
        let giveUps = try await MaxDeliveriesWatcher(connection: connection, stream: Streams.commands,
                                                     durable: configuration.durable, deadLetters: deadLetters, logger: logger)
        logger.info("domain-engine consuming", metadata: ["consumer": "\(configuration.durable)"])
        let loop = ConsumerLoop(consumer: consumer, batchSize: configuration.batchSize, expires: .seconds(1),
                                prefetch: true, lagMetric: "engine_consumer_pending", logger: logger)
        let keeper = Task { await keepHeldAlive() }
        await withTaskGroup(of: Void.self) { workers in
            for _ in 0..<configuration.groupConcurrency {
                workers.addTask { await self.work() }
            }
            await loop.run { batch in
                batchSizes.record(batch.count)
                await enqueue(batch)
            }
            // Hand back what no worker has taken yet; the runs in hand finish.
            let leftover = lanes.close().map(\.message)
            if !leftover.isEmpty { try? await leftover.nakAll() }
        }
        keeper.cancel()
        await giveUps.stop()
        logger.info("domain-engine stopped")
    }

    /// Queues one fetched batch on its groups' lanes; waits while the lanes hold `maxHeld`.
    func enqueue(_ batch: [JetStreamMessage]) async {
        // Any gap in consumer sequences means another replica received messages in between (or
        // this process restarted): groups must re-check their order before deciding.
        // Each message gets the epoch current at its position: a gap just before it (a delivery
        // that went elsewhere) starts a new epoch, so a group whose commands straddle the gap
        // re-checks its order.
        let items = deliveryTracking.withLock { tracking -> [(key: String, item: Queued, redelivery: Bool)] in
            batch.map { message in
                let metadata = message.metadata
                if metadata.consumerSequence != tracking.lastConsumerSequence + 1 { tracking.epoch += 1 }
                tracking.lastConsumerSequence = metadata.consumerSequence
                return (message.subject, Queued(message: message, epoch: tracking.epoch), metadata.deliveryCount > 1)
            }
        }
        await lanes.enqueue(items) { new, held in
            new.message.metadata.streamSequence == held.message.metadata.streamSequence
        }
        heldGauge.record(Double(lanes.heldCount))
    }

    /// One worker: takes a group's run, decides it, acknowledges it, and starts over.
    func work() async {
        while let (key, run) = await lanes.next() {
            runSizes.record(run.count)
            let messages = run.map(\.item)
            let progress = await process(messages)
            guard progress != .finished else {
                lanes.finished(key, count: run.count)
                continue
            }
            // Keep order: this run (but a dead-lettered first command) and whatever else the lane
            // holds come back by redelivery, and the group's state is re-checked then. When
            // shutting down they are handed back at once (to another replica); otherwise they come
            // back after ackWait, so a failing dependency does not use up their deliveries.
            let rest = lanes.drop(key).map(\.message)
            let handBack = messages.dropFirst(progress == .interruptedAfterFirst ? 1 : 0).map(\.message) + rest
            if Task.isShuttingDownGracefully || Task.isCancelled { try? await handBack.nakAll() }
            lanes.finished(key, count: run.count + rest.count)
            if let group = try? GroupSubject(parsing: key) { processor.forget(group.groupID.rawValue) }
        }
    }

    /// Reports commands that wait long in their lane as in progress, so the server does not
    /// deliver them again meanwhile.
    func keepHeldAlive() async {
        let interval = configuration.ackWait / 3
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let waiting = lanes.waiting(since: .now - interval).map(\.message)
            if !waiting.isEmpty { try? await waiting.inProgressAll() }
        }
    }

    private enum Progress: Equatable {
        case finished
        /// Not decided; the run comes back by redelivery.
        case interrupted
        /// The run's first command was dead-lettered; the rest comes back by redelivery.
        case interruptedAfterFirst
    }

    /// Decides one group's run, retrying transient failures in place (keeping the group's order)
    /// and telling the server the commands are still in progress meanwhile.
    private func process(_ run: [Queued]) async -> Progress {
        let start = ContinuousClock.now
        let deliveries = run.map { queued in
            let metadata = queued.message.metadata
            return CommandProcessor.Delivery(subject: queued.message.subject, payload: queued.message.payload,
                                             streamSequence: metadata.streamSequence, epoch: queued.epoch,
                                             redelivered: metadata.deliveryCount > 1)
        }
        var attempt = 0
        while true {
            do {
                let outcomes = try await processor.handle(deliveries)
                var done: [JetStreamMessage] = []
                done.reserveCapacity(run.count)
                for (queued, outcome) in zip(run, outcomes) {
                    switch outcome {
                    case .decided:
                        done.append(queued.message)
                        commandToEvent.recordSeconds(max(0, Date().timeIntervalSince(queued.message.metadata.timestamp)))
                    case .deadLetter(let reason):
                        guard await deadLetters.deadLetter(queued.message, logger: logger, reason: reason) else {
                            try? await done.ackAll()
                            return .interrupted
                        }
                    }
                }
                latency.record(ContinuousClock.now - start)
                do {
                    try await done.ackAll()
                } catch {
                    // Unacknowledged commands come back after ackWait; their outcomes exist, so
                    // the redelivery is recognised as already decided.
                    logger.warning("acknowledging a run failed", metadata: ["error": "\(error)"])
                }
                return .finished
            } catch {
                attempt += 1
                failures.increment()
                let first = run[0].message
                logger.warning("commands failed; retrying", metadata: first.logContext.merging([
                    "attempt": "\(attempt)", "commands": "\(run.count)", "error": "\(error)"]) { $1 })
                if Task.isShuttingDownGracefully || Task.isCancelled { return .interrupted }
                if first.metadata.deliveryCount >= UInt64(configuration.maxDeliver) && attempt >= 3 {
                    // Its last delivery: dead-letter the first command (the one the group is stuck
                    // on); the rest of the run comes back by redelivery and goes on without it.
                    return await deadLetters.deadLetter(first, logger: logger, reason: "failed on its last delivery: \(error)")
                        ? .interruptedAfterFirst : .interrupted
                }
                try? await run.map(\.message).inProgressAll()
                try? await Task.sleep(for: backoff.delay(attempt: attempt))
            }
        }
    }
}
