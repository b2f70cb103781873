import Contracts
import Foundation
import Logging
import Metrics
import Sharding

/// Turns a group's command messages into their outcome events: loads (or reuses) the group's
/// state, decides each command in stream order, and appends the outcomes as runs (up to
/// `EventMessage.maxEvents` events in one message, under one expected-sequence check). On a
/// conflict (another replica appended) it takes the run back, reads what was appended and decides
/// again. Transient failures throw, so the caller retries the same messages; nothing is dropped.
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
    /// How long a group waits, without any progress, for an earlier command that another replica
    /// holds before deciding it from the log itself (the holder may have died).
    let handoffWait: Duration
    let logger: Logger
    static let maxConflictRetries = 20

    private let decided = Counter(label: "engine_commands_total", dimensions: [("outcome", "decided")])
    private let duplicates = Counter(label: "engine_commands_total", dimensions: [("outcome", "already_decided")])
    private let decidedOutOfOrder = Counter(label: "engine_commands_decided_out_of_order_total")
    private let conflicts = Counter(label: "engine_sequence_conflicts_total")
    private let loads = Counter(label: "engine_group_loads_total")
    private let refreshes = Counter(label: "engine_group_refreshes_total")
    private let catchUps = Counter(label: "engine_commands_decided_from_log_total")
    private let runLengths = Recorder(label: "engine_events_per_append")

    public init(store: any EventStore, cache: GroupStateCache, logger: Logger, limits: GrowthLimits = GrowthLimits(),
                handoffWait: Duration = .milliseconds(500), now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.limits = limits
        self.cache = cache
        self.logger = logger
        self.handoffWait = handoffWait
        self.now = now
    }

    /// One delivery on its own.
    public func handle(_ delivery: Delivery) async throws -> Outcome {
        try await handle([delivery])[0]
    }

    /// Deliveries in stream order; returns their outcomes in the same order. Each group's
    /// commands are decided in order, its outcomes appended in runs.
    public func handle(_ deliveries: [Delivery]) async throws -> [Outcome] {
        var outcomes = [Outcome?](repeating: nil, count: deliveries.count)
        var byGroup: [GroupID: [Pending]] = [:]
        var order: [GroupID] = []
        for (index, delivery) in deliveries.enumerated() {
            switch Self.parse(delivery) {
            case .failure(let reason):
                outcomes[index] = .deadLetter(reason: reason.text)
            case .success(let (group, command)):
                if byGroup[group] == nil { order.append(group) }
                byGroup[group, default: []].append(Pending(index: index, command: command, delivery: delivery))
            }
        }
        for group in order {
            try await decide(byGroup[group]!, of: group, into: &outcomes)
        }
        return outcomes.map { $0! }
    }

    struct Pending {
        let index: Int
        let command: TodoCommand
        let delivery: Delivery
    }

    struct Reason: Error { let text: String }

    static func parse(_ delivery: Delivery) -> Result<(GroupID, TodoCommand), Reason> {
        let groupSubject: GroupSubject
        do {
            groupSubject = try GroupSubject(parsing: delivery.subject)
        } catch {
            return .failure(Reason(text: "bad subject: \(error)"))
        }
        guard groupSubject.kind == .command else { return .failure(Reason(text: "not a command subject: \(delivery.subject)")) }
        let command: TodoCommand
        do {
            command = try TodoCommand(json: delivery.payload)
        } catch {
            return .failure(Reason(text: "undecodable command: \(error)"))
        }
        // Its outcome event would carry these ids; an event that cannot be stored helps no one.
        guard command.hasStorableIdentity else {
            return .failure(Reason(text: "the command's ids or actor are not valid (command_id, group_id, todo_id, actor_user_id, actor_name)"))
        }
        return .success((groupSubject.groupID, command))
    }

    /// Outcomes decided but not stored yet, and how to take them back.
    struct Run {
        var events: [TodoEvent] = []
        var estimatedBytes = 0
        var rollback: GroupStateRollback?
        /// Delivery index (nil: decided from the log) and event type of each event.
        var outcomes: [(index: Int?, type: EventType)] = []

        var isFull: Bool { events.count >= EventMessage.maxEvents || estimatedBytes >= EventMessage.maxBytes / 2 }
    }

    private struct StaleState: Error {}

    private func decide(_ pending: [Pending], of group: GroupID, into outcomes: inout [Outcome?]) async throws {
        // Checked out of the cache: put back below once it is up to date; on any other error it
        // is left out, and the group's next command reloads it from the log.
        let (loaded, loadedFresh, loadedEpoch) = try await checkOutState(of: group)
        var state = consume loaded
        var fresh = loadedFresh
        // The epoch in which the state's order was last verified (nil: check before deciding).
        var verified: UInt64? = fresh ? nil : loadedEpoch
        var run = Run()
        // Set when another replica held earlier commands of the group.
        var shared = false
        var role = Role()
        for _ in 0..<Self.maxConflictRetries {
            do {
                for item in pending where outcomes[item.index] == nil {
                    let delivery = item.delivery
                    if delivery.streamSequence <= state.lastCommandSequence, hasOutcome(item.command, in: state) {
                        duplicates.increment()
                        outcomes[item.index] = .decided(nil)
                        continue
                    }
                    if verified != delivery.epoch || delivery.redelivered {
                        // This process may have missed some of the group's commands (they went
                        // to another replica, or to a process that died): every earlier one must
                        // have its outcome first, so the group's commands are decided in stream
                        // order whoever holds them.
                        if try await catchUp(group, before: delivery.streamSequence, state: &state, run: &run,
                                             fresh: &fresh, role: &role, outcomes: &outcomes) {
                            shared = true
                        }
                        verified = delivery.epoch
                        if delivery.streamSequence <= state.lastCommandSequence, hasOutcome(item.command, in: state) {
                            duplicates.increment()
                            outcomes[item.index] = .decided(nil)
                            continue
                        }
                    }
                    if delivery.streamSequence < state.lastCommandSequence {
                        decidedOutOfOrder.increment()
                        logger.error("a command below the group's decided sequence has no outcome; deciding it now, out of stream order",
                                     metadata: ["group.id": "\(group)", "command.id": "\(item.command.commandID)",
                                                "command.sequence": "\(delivery.streamSequence)",
                                                "decided.sequence": "\(state.lastCommandSequence)"])
                    }
                    if let type = decide(item.command, sequence: delivery.streamSequence, state: &state, run: &run) {
                        run.outcomes.append((item.index, type))
                        role.active = true
                    } else {
                        outcomes[item.index] = .decided(nil)
                    }
                    if run.isFull { try await flush(&run, group: group, state: &state, outcomes: &outcomes) }
                }
                if shared && !role.yielded {
                    // The group's commands are split between replicas (the shared consumer hands
                    // them out one by one): go on deciding from the log, so the others find theirs
                    // decided instead of handing the group back and forth for every command.
                    try await readAhead(group, state: &state, run: &run, outcomes: &outcomes)
                }
                try await flush(&run, group: group, state: &state, outcomes: &outcomes)
                cache.put(state, epoch: verified ?? 0)
                return
            } catch let error where error is StaleState || (error as? EventStoreError) == .sequenceConflict {
                conflicts.increment()
                logger.debug("sequence conflict, deciding again", metadata: ["group.id": "\(group)"])
                // Take the run back, read what the other writer appended, and decide again.
                run.rollback?.restore(&state)
                run = Run()
                role = Role(active: false, yielded: true)
                try await refresh(group, state: &state)
                fresh = true
                verified = nil
            }
        }
        throw TooManyConflicts(groupID: group.rawValue)
    }

    /// This call's part in moving a group forward when its commands are split between replicas.
    struct Role {
        /// It decided something: it is the replica moving the group forward, and takes what is
        /// missing straight from the log instead of waiting for whoever holds it.
        var active = false
        /// It lost a conflict: the other replica is moving the group; this one waits for it.
        var yielded = false

        var takesOver: Bool { active && !yielded }
    }

    /// Makes sure every command of the group before stream sequence `sequence` has its outcome.
    /// An earlier command without one is in another replica's hands. A call that is already
    /// moving the group forward decides such commands itself, from the log, in bulk (the other
    /// replica then finds them decided). Otherwise it stores its own pending outcomes, reads what
    /// others append and waits while the group makes progress; only when nothing moved for
    /// `handoffWait` (the holder died or is stuck) does it take over.
    /// Returns whether another replica held earlier commands.
    @discardableResult
    private func catchUp(_ group: GroupID, before sequence: UInt64, state: inout GroupState, run: inout Run,
                         fresh: inout Bool, role: inout Role, outcomes: inout [Outcome?]) async throws -> Bool {
        var lastProgress = ContinuousClock.now
        var shared = false
        var next: LoggedCommand?
        while true {
            let from = state.lastCommandSequence + 1
            if next == nil || next!.sequence < from {
                guard from < sequence, let found = try await store.command(of: group, from: from), found.sequence < sequence else {
                    return shared
                }
                next = found
            }
            let logged = next!
            // Not decodable or not storable: its holder dead-letters it. A copy of a command that
            // has its outcome gets none.
            guard let earlier = logged.command, earlier.hasStorableIdentity,
                  !state.recentCommands.contains(earlier.commandID) else {
                state.lastCommandSequence = max(state.lastCommandSequence, logged.sequence)
                continue
            }
            shared = true
            let stalled = ContinuousClock.now - lastProgress >= handoffWait
            if !role.takesOver && !stalled {
                try await flush(&run, group: group, state: &state, outcomes: &outcomes)
                if !fresh {
                    let before = state.lastCommandSequence
                    try await refresh(group, state: &state)
                    if state.lastCommandSequence > before { lastProgress = .now }
                    if state.lastCommandSequence >= logged.sequence { continue }
                }
                // The replica moving the group decides this one (and reads ahead past it); look
                // again in a moment, so waiting costs one read per pause, not a busy poll.
                try await Task.sleep(for: Self.handoffPause)
                fresh = false
                continue
            }
            if !fresh && !role.active {
                // Taking over after a stall: start from what is stored now.
                try await flush(&run, group: group, state: &state, outcomes: &outcomes)
                try await refresh(group, state: &state)
                fresh = true
                continue
            }
            catchUps.increment()
            if let type = decide(earlier, sequence: logged.sequence, state: &state, run: &run) {
                run.outcomes.append((nil, type))
            }
            state.lastCommandSequence = max(state.lastCommandSequence, logged.sequence)
            if run.isFull { try await flush(&run, group: group, state: &state, outcomes: &outcomes) }
            role.active = true
        }
    }

    /// Decides the group's next commands straight from the log (whoever holds them), up to
    /// `readAheadLimit` of them or the log's end.
    private func readAhead(_ group: GroupID, state: inout GroupState, run: inout Run, outcomes: inout [Outcome?]) async throws {
        for _ in 0..<Self.readAheadRounds {
            // Is there anything? One lookup, before an ordered replay (which costs a consumer).
            guard try await store.command(of: group, from: state.lastCommandSequence + 1) != nil else { return }
            try await readAheadOnce(group, state: &state, run: &run, outcomes: &outcomes)
        }
    }

    private func readAheadOnce(_ group: GroupID, state: inout GroupState, run: inout Run, outcomes: inout [Outcome?]) async throws {
        for logged in try await store.commands(of: group, from: state.lastCommandSequence + 1, limit: Self.readAheadLimit)
        where logged.sequence > state.lastCommandSequence {
            if let command = logged.command, command.hasStorableIdentity, !state.recentCommands.contains(command.commandID) {
                catchUps.increment()
                if let type = decide(command, sequence: logged.sequence, state: &state, run: &run) {
                    run.outcomes.append((nil, type))
                }
            }
            state.lastCommandSequence = max(state.lastCommandSequence, logged.sequence)
            if run.isFull { try await flush(&run, group: group, state: &state, outcomes: &outcomes) }
        }
    }

    /// Whether a command at or below the group's highest decided command sequence has its outcome.
    /// Normally it has (a redelivery): the group's commands are decided in stream order. It has not
    /// when a read of the command log missed it (a stale answer while the stream's leader changes)
    /// and a later command was decided first. Its id is then missing from the group's complete
    /// record of decided commands, and it is decided now, after the later one, instead of being
    /// acknowledged without an outcome. Once that record may be incomplete (it has forgotten ids,
    /// more than 16,384 decided since the state was built, or an event message of the group could
    /// not be read) a missing id proves nothing, and the sequence decides.
    ///
    /// Membership and group commands are the exception: command-api has already committed them in
    /// Postgres, in stream order, so deciding one after a later one (a removal before the addition)
    /// would contradict that order. One of those below the sequence counts as decided, as before.
    private func hasOutcome(_ command: TodoCommand, in state: GroupState) -> Bool {
        switch command.action {
        case .addMember, .changeMemberRole, .removeMember, .deleteGroup: return true
        default: return !state.recentCommands.provesUndecided(command.commandID)
        }
    }

    static let readAheadLimit = 512
    static let readAheadRounds = 8
    /// How long a replica waiting for another one's progress pauses between looks.
    static let handoffPause: Duration = .milliseconds(5)

    /// Decides one command against `state`, applies its outcome to `state` and adds it to `run`.
    /// Returns the outcome's type, or nil when the command already had its outcome.
    private func decide(_ command: TodoCommand, sequence: UInt64, state: inout GroupState, run: inout Run) -> EventType? {
        switch Decider.decide(state, command, now: now(), limits: limits) {
        case .alreadyDecided:
            duplicates.increment()
            state.lastCommandSequence = max(state.lastCommandSequence, sequence)
            return nil
        case .emit(var event):
            event.commandSequence = sequence
            if run.rollback == nil { run.rollback = GroupStateRollback(state) }
            run.rollback!.note(event, before: state)
            Decider.apply(event, to: &state)
            run.events.append(event)
            run.estimatedBytes += EventMessage.estimatedSize(of: event)
            return event.eventType
        }
    }

    /// Appends the run as one message under the group's expected sequence.
    private func flush(_ run: inout Run, group: GroupID, state: inout GroupState, outcomes: inout [Outcome?]) async throws {
        guard !run.events.isEmpty else { return }
        switch try await store.append(run.events, to: group, expectedLastSequence: state.lastSequence) {
        case .stored(let sequence):
            state.lastSequence = sequence
            runLengths.record(run.events.count)
            for (index, type) in run.outcomes {
                decided.increment()
                if let index { outcomes[index] = .decided(type) }
            }
            for event in run.events where event.eventType == .commandRejected {
                Counter(label: "engine_rejections_total", dimensions: [("code", event.code ?? "unknown")]).increment()
            }
            run = Run()
        case .duplicate:
            // Another engine (or an earlier attempt) stored this outcome; our state is stale.
            throw StaleState()
        }
    }

    /// Applies what was appended to the group after the state's last known message.
    private func refresh(_ group: GroupID, state: inout GroupState) async throws {
        refreshes.increment()
        let tail = try await store.history(of: group, after: state.lastSequence)
        for stored in tail.events {
            Decider.apply(stored.event, to: &state)
        }
        if tail.skippedMessages > 0 { state.recentCommands.markIncomplete() }
        state.lastSequence = tail.lastSequence
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
        if history.skippedMessages > 0 { state.recentCommands.markIncomplete() }
        state.lastSequence = history.lastSequence
        return (state, true, 0)
    }
}
