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

    public init(store: any EventStore, cache: GroupStateCache, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.cache = cache
        self.logger = logger
        self.now = now
    }

    public func handle(subject: String, payload: Data) async throws -> Outcome {
        let groupSubject: GroupSubject
        do {
            groupSubject = try GroupSubject(parsing: subject)
        } catch {
            return .deadLetter(reason: "bad subject: \(error)")
        }
        guard groupSubject.kind == .command else { return .deadLetter(reason: "not a command subject: \(subject)") }
        let command: TodoCommand
        do {
            command = try MessageCoding.decoder().decode(TodoCommand.self, from: payload)
        } catch {
            return .deadLetter(reason: "undecodable command: \(error)")
        }
        let group = groupSubject.groupID

        for _ in 0..<Self.maxConflictRetries {
            var state = try await state(of: group)
            switch Decider.decide(state, command, now: now()) {
            case .alreadyDecided:
                duplicates.increment()
                return .decided(nil)
            case .emit(let event):
                do {
                    switch try await store.append(event, to: group, expectedLastSequence: state.lastSequence) {
                    case .stored(let sequence):
                        state = Decider.evolve(state, event)
                        state.lastSequence = sequence
                        cache.put(state)
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

    func state(of group: GroupID) async throws -> GroupState {
        if let cached = cache.get(group.rawValue) { return cached }
        loads.increment()
        var state = GroupState(groupID: group.rawValue)
        let history = try await store.history(of: group)
        for stored in history.events {
            state = Decider.evolve(state, stored.event)
        }
        state.lastSequence = history.lastSequence
        cache.put(state)
        return state
    }
}
