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
    let limits: GrowthLimits
    let logger: Logger
    static let maxConflictRetries = 20

    private let decided = Counter(label: "engine_commands_total", dimensions: [("outcome", "decided")])
    private let duplicates = Counter(label: "engine_commands_total", dimensions: [("outcome", "already_decided")])
    private let conflicts = Counter(label: "engine_sequence_conflicts_total")
    private let loads = Counter(label: "engine_group_loads_total")
    private let catchUps = Counter(label: "engine_commands_decided_from_log_total")

    public init(store: any EventStore, cache: GroupStateCache, logger: Logger, limits: GrowthLimits = GrowthLimits(),
                now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.limits = limits
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
            command = try TodoCommand(json: delivery.payload)
        } catch {
            return .deadLetter(reason: "undecodable command: \(error)")
        }
        // Its outcome event would carry these ids; an event that cannot be stored helps no one.
        guard command.hasStorableIdentity else {
            return .deadLetter(reason: "the command's ids or actor are not valid (command_id, group_id, todo_id, actor_user_id, actor_name)")
        }
        let group = groupSubject.groupID

        for _ in 0..<Self.maxConflictRetries {
            // Checked out of the cache: put back below once it is up to date; on any error it is
            // left out, and the group's next command reloads it from the log.
            let (loaded, fresh, epoch) = try await checkOutState(of: group)
            var state = consume loaded
            do {
                if fresh || epoch != delivery.epoch || delivery.redelivered {
                    // This process may have missed some of the group's commands (they went to
                    // another replica, or to a process that died): decide any earlier one that
                    // has no outcome yet first, straight from the log, so the group's commands
                    // are decided in stream order whoever holds them. Deciding is idempotent, so
                    // the holder later finds them already decided.
                    var from = state.lastCommandSequence + 1
                    while from < delivery.streamSequence,
                          let logged = try await store.command(of: group, from: from), logged.sequence < delivery.streamSequence {
                        from = logged.sequence + 1
                        guard let earlier = logged.command, !state.decidedCommands.contains(earlier.commandID) else { continue }
                        if !fresh { throw StaleState() } // our cache may just not know another replica decided it
                        catchUps.increment()
                        _ = try await decide(earlier, sequence: logged.sequence, group: group, state: &state)
                    }
                }
                let outcome = try await decide(command, sequence: delivery.streamSequence, group: group, state: &state)
                cache.put(state, epoch: delivery.epoch)
                return .decided(outcome)
            } catch is StaleState {
                continue
            } catch EventStoreError.sequenceConflict {
                conflicts.increment()
                logger.debug("sequence conflict, deciding again", metadata: [
                    "group.id": "\(group)", "command.id": "\(command.commandID)"])
            }
        }
        throw TooManyConflicts(groupID: group.rawValue)
    }

    private struct StaleState: Error {}

    /// Decides one command against `state` and appends its outcome; updates `state`.
    /// Returns the stored event's type, or nil when the command already had its outcome.
    private func decide(_ command: TodoCommand, sequence: UInt64, group: GroupID,
                        state: inout GroupState) async throws -> EventType? {
        switch Decider.decide(state, command, now: now(), limits: limits) {
        case .alreadyDecided:
            duplicates.increment()
            state.lastCommandSequence = max(state.lastCommandSequence, sequence)
            return nil
        case .emit(var event):
            event.commandSequence = sequence
            switch try await store.append(event, to: group, expectedLastSequence: state.lastSequence) {
            case .stored(let stored):
                Decider.apply(event, to: &state)
                state.lastSequence = stored
                decided.increment()
                if event.eventType == .commandRejected {
                    Counter(label: "engine_rejections_total", dimensions: [("code", event.code ?? "unknown")]).increment()
                }
                return event.eventType
            case .duplicate:
                // Another engine (or an earlier delivery) stored this outcome; our state is stale.
                duplicates.increment()
                throw StaleState()
            }
        }
    }

    /// Forgets a group's cached state (after its processing was interrupted), so the next command
    /// reloads and re-checks order.
    public func forget(_ group: String) {
        cache.invalidate(group)
    }

    /// The group's state (taken out of the cache, or rebuilt from its events), whether it was
    /// just loaded, and the epoch it was last verified in.
    func checkOutState(of group: GroupID) async throws -> (GroupState, fresh: Bool, epoch: UInt64) {
        if let (cached, epoch) = cache.checkOut(group.rawValue) { return (cached, false, epoch) }
        loads.increment()
        var state = GroupState(groupID: group.rawValue)
        let history = try await store.history(of: group)
        for stored in history.events {
            Decider.apply(stored.event, to: &state)
        }
        state.lastSequence = history.lastSequence
        return (state, true, 0)
    }
}
