import Contracts
import Foundation
import Logging
import Metrics
import Sharding

/// Turns one command message into its outcome event: loads (or reuses) the group's state,
/// decides, appends with the group's expected sequence, and on a conflict reloads and decides
/// again. Transient failures throw, so the caller retries the same message; nothing is dropped.
public final class CommandProcessor: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// The outcome event was stored now (its type), or already existed (nil): acknowledge.
        case decided(EventType?)
        /// The message can never be processed (bad subject, undecodable): dead-letter it.
        case deadLetter(reason: String)
        /// An earlier command of the same group (at this COMMANDS sequence) has no outcome yet,
        /// probably in another replica's hands: ask for this one again shortly.
        case waitForEarlier(sequence: UInt64)
    }

    /// One delivered command message.
    public struct Delivery: Sendable {
        public var subject: String
        public var payload: Data
        /// Its COMMANDS stream sequence.
        public var streamSequence: UInt64
        /// The delivery epoch: it changes whenever this process may have missed deliveries (a gap
        /// in consumer sequences, a restart). A group last handled in the current epoch needs no
        /// ordering check: nothing of it can have gone elsewhere in between.
        public var epoch: UInt64
        /// Delivered before (to us or another replica).
        public var redelivered: Bool

        public init(subject: String, payload: Data, streamSequence: UInt64, epoch: UInt64, redelivered: Bool) {
            self.subject = subject
            self.payload = payload
            self.streamSequence = streamSequence
            self.epoch = epoch
            self.redelivered = redelivered
        }
    }

    public struct TooManyConflicts: Error, CustomStringConvertible {
        public let groupID: String
        public var description: String { "gave up after repeated sequence conflicts on group \(groupID)" }
    }

    let store: any EventStore
    let cache: GroupStateCache
    let now: @Sendable () -> Date
    let logger: Logger
    static let maxConflictRetries = 20

    private let decided = Counter(label: "engine_commands_total", dimensions: [("outcome", "decided")])
    private let duplicates = Counter(label: "engine_commands_total", dimensions: [("outcome", "already_decided")])
    private let conflicts = Counter(label: "engine_sequence_conflicts_total")
    private let loads = Counter(label: "engine_group_loads_total")
    private let waits = Counter(label: "engine_order_waits_total")

    public init(store: any EventStore, cache: GroupStateCache, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.cache = cache
        self.logger = logger
        self.now = now
    }

    public func handle(_ delivery: Delivery) async throws -> Outcome {
        let groupSubject: GroupSubject
        do {
            groupSubject = try GroupSubject(parsing: delivery.subject)
        } catch {
            return .deadLetter(reason: "bad subject: \(error)")
        }
        guard groupSubject.kind == .command else { return .deadLetter(reason: "not a command subject: \(delivery.subject)") }
        let command: TodoCommand
        do {
            command = try MessageCoding.decoder().decode(TodoCommand.self, from: delivery.payload)
        } catch {
            return .deadLetter(reason: "undecodable command: \(error)")
        }
        let group = groupSubject.groupID

        for _ in 0..<Self.maxConflictRetries {
            let (loaded, fresh, epoch) = try await state(of: group)
            var state = loaded
            if fresh || epoch != delivery.epoch || delivery.redelivered,
               let earlier = try await firstUndecided(in: state, of: group, before: delivery.streamSequence) {
                if !fresh {
                    // Our cached state may simply not know that another replica decided it.
                    cache.invalidate(group.rawValue)
                    continue
                }
                waits.increment()
                return .waitForEarlier(sequence: earlier)
            }
            switch Decider.decide(state, command, now: now()) {
            case .alreadyDecided:
                duplicates.increment()
                state.lastCommandSequence = max(state.lastCommandSequence, delivery.streamSequence)
                cache.put(state, epoch: delivery.epoch)
                return .decided(nil)
            case .emit(var event):
                event.commandSequence = delivery.streamSequence
                do {
                    switch try await store.append(event, to: group, expectedLastSequence: state.lastSequence) {
                    case .stored(let sequence):
                        state = Decider.evolve(state, event)
                        state.lastSequence = sequence
                        cache.put(state, epoch: delivery.epoch)
                        decided.increment()
                        if event.eventType == .commandRejected {
                            Counter(label: "engine_rejections_total", dimensions: [("code", event.code ?? "unknown")]).increment()
                        }
                        return .decided(event.eventType)
                    case .duplicate:
                        // Another engine (or an earlier delivery) stored this outcome; our state is stale.
                        cache.invalidate(group.rawValue)
                        duplicates.increment()
                        return .decided(nil)
                    }
                } catch EventStoreError.sequenceConflict {
                    conflicts.increment()
                    cache.invalidate(group.rawValue)
                    logger.debug("sequence conflict, deciding again", metadata: [
                        "group.id": "\(group)", "command.id": "\(command.commandID)"])
                }
            }
        }
        throw TooManyConflicts(groupID: group.rawValue)
    }

    /// The COMMANDS sequence of the group's first command before `sequence` that has no outcome
    /// yet, or nil when every earlier command is decided (undecodable ones are dead-lettered by
    /// whoever holds them and do not count).
    func firstUndecided(in state: GroupState, of group: GroupID, before sequence: UInt64) async throws -> UInt64? {
        var from = state.lastCommandSequence + 1
        while from < sequence {
            guard let logged = try await store.command(of: group, from: from), logged.sequence < sequence else { return nil }
            if let id = logged.commandID, !state.decidedCommands.contains(id) { return logged.sequence }
            from = logged.sequence + 1
        }
        return nil
    }

    /// Forgets a group's cached state (after its processing was interrupted), so the next command
    /// reloads and re-checks order.
    public func forget(_ group: String) {
        cache.invalidate(group)
    }

    /// The group's state, whether it was just loaded, and the epoch it was last verified in.
    func state(of group: GroupID) async throws -> (GroupState, fresh: Bool, epoch: UInt64) {
        if let (cached, epoch) = cache.get(group.rawValue) { return (cached, false, epoch) }
        loads.increment()
        var state = GroupState(groupID: group.rawValue)
        let history = try await store.history(of: group)
        for stored in history.events {
            state = Decider.evolve(state, stored.event)
        }
        state.lastSequence = history.lastSequence
        return (state, true, 0)
    }
}
