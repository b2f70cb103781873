import Contracts
import Foundation
import Logging
import Sharding
import Synchronization
import Testing
@testable import DomainEngine

/// An in-memory EventStore with the same append rules as JetStream (expected last sequence,
/// duplicate event ids) and a command log, for testing the processor without NATS.
final class InMemoryEventStore: EventStore {
    struct State {
        var sequence: UInt64 = 0
        var events: [String: [StoredEvent]] = [:]
        var eventIDs: [String: UInt64] = [:]
        var commands: [String: [LoggedCommand]] = [:]
        /// Messages appended (a run of events is one).
        var appends = 0
        /// The next append stores its event, then fails as if its acknowledgement was lost.
        var loseNextAcknowledgement = false
    }

    struct LostAcknowledgement: Error {}

    let state = Mutex(State())

    /// Logs a command as if published to COMMANDS; returns its sequence.
    func log(_ command: TodoCommand) -> UInt64 {
        state.withLock { state in
            state.sequence += 1
            state.commands[command.groupID, default: []].append(LoggedCommand(sequence: state.sequence, command: command))
            return state.sequence
        }
    }

    func history(of group: GroupID, after sequence: UInt64) async throws -> GroupHistory {
        state.withLock { state in
            let events = (state.events[group.rawValue] ?? []).filter { $0.sequence > sequence }
            return GroupHistory(events: events, lastSequence: events.last?.sequence ?? sequence)
        }
    }

    func command(of group: GroupID, from sequence: UInt64) async throws -> LoggedCommand? {
        state.withLock { $0.commands[group.rawValue]?.first { $0.sequence >= sequence } }
    }

    func append(_ events: [TodoEvent], to group: GroupID, expectedLastSequence: UInt64) async throws -> AppendOutcome {
        try state.withLock { state in
            // As JetStream: the message id is the first event's id.
            if let existing = state.eventIDs[events[0].eventID] { return .duplicate(sequence: existing) }
            let last = state.events[group.rawValue]?.last?.sequence ?? 0
            guard last == expectedLastSequence else { throw EventStoreError.sequenceConflict }
            state.sequence += 1
            state.appends += 1
            for event in events {
                state.events[group.rawValue, default: []].append(StoredEvent(event: event, sequence: state.sequence))
            }
            state.eventIDs[events[0].eventID] = state.sequence
            if state.loseNextAcknowledgement {
                state.loseNextAcknowledgement = false
                throw LostAcknowledgement()
            }
            return .stored(sequence: state.sequence)
        }
    }

    func events(_ group: String) -> [TodoEvent] {
        state.withLock { ($0.events[group] ?? []).map(\.event) }
    }
}

@Suite("Command processor with an in-memory store")
struct CommandProcessorTests {
    let store = InMemoryEventStore()
    let group = "g1"
    let owner = ("u1", "olivia")

    func processor(handoffWait: Duration = .milliseconds(20)) -> CommandProcessor {
        CommandProcessor(store: store, cache: GroupStateCache(capacity: 100), logger: Logger(label: "test"),
                         handoffWait: handoffWait, now: { Date(timeIntervalSince1970: 1_795_000_000) })
    }

    func command(_ id: String, _ action: CommandAction, todo: String? = nil, configure: (inout TodoCommand) -> Void = { _ in }) -> TodoCommand {
        var command = TodoCommand(commandID: id, action: action, groupID: group, todoID: todo, actorUserID: owner.0,
                                  actorName: owner.1, issuedAt: Date())
        configure(&command)
        return command
    }

    func delivery(_ command: TodoCommand, sequence: UInt64, epoch: UInt64 = 1, redelivered: Bool = false) throws -> CommandProcessor.Delivery {
        CommandProcessor.Delivery(subject: GroupSubject.command(try GroupID(group)).subject,
                                  payload: try MessageCoding.encoder().encode(command), streamSequence: sequence,
                                  epoch: epoch, redelivered: redelivered)
    }

    /// Todo `t` created at version 2 by another engine, behind the processor's back.
    func appendForeignTodo() async throws {
        let foreign = TodoEvent(eventID: "evt-foreign", commandID: "foreign", eventType: .todoCreated, groupID: group,
                                todoID: "t", actorUserID: "u1", actorName: "olivia", occurredAt: Date(), shardID: 0,
                                groupVersion: 2, title: "from elsewhere", status: .todo, labels: [], position: 1, version: 1,
                                createdBy: "u1")
        let last = store.state.withLock { $0.events[group]!.last!.sequence }
        _ = try await store.append(foreign, to: try GroupID(group), expectedLastSequence: last)
    }

    /// Runs `body` while lookups of the command log miss the command at `sequence`, as a stale
    /// answer during a leader change can.
    func whileTheLogMisses<T>(_ sequence: UInt64, _ body: () async throws -> T) async throws -> T {
        let logged = store.state.withLock { $0.commands[group]! }
        store.state.withLock { $0.commands[group] = logged.filter { $0.sequence != sequence } }
        defer { store.state.withLock { $0.commands[group] = logged } }
        return try await body()
    }

    func addOwner() -> TodoCommand {
        command("c0", .addMember) { $0.memberUserID = "u1"; $0.memberUsername = "olivia"; $0.role = .owner }
    }

    /// Three commands logged in order: the owner joins, creates todo `t`, updates it.
    struct JoinCreateUpdate {
        let join: TodoCommand, create: TodoCommand, update: TodoCommand
        let joinSeq: UInt64, createSeq: UInt64, updateSeq: UInt64
    }

    func logJoinCreateUpdate() -> JoinCreateUpdate {
        let join = addOwner()
        let create = command("c1", .createTodo, todo: "t") { $0.title = "first" }
        let update = command("c2", .updateTodo, todo: "t") { $0.title = "second" }
        return JoinCreateUpdate(join: join, create: create, update: update,
                                joinSeq: store.log(join), createSeq: store.log(create), updateSeq: store.log(update))
    }

    @Test func aCommandWhoseIdsCannotBeStoredIsDeadLettered() async throws {
        let processor = processor()
        _ = try await processor.handle(delivery(addOwner(), sequence: 1))
        let forged = command("c\u{0}1", .createTodo, todo: "t") { $0.title = "x" }
        guard case .deadLetter = try await processor.handle(delivery(forged, sequence: 2)) else {
            Issue.record("a command with a NUL in its id was decided")
            return
        }
        var badActor = command("c2", .createTodo, todo: "t") { $0.title = "x" }
        badActor.actorName = "Not A Username"
        guard case .deadLetter = try await processor.handle(delivery(badActor, sequence: 3)) else {
            Issue.record("a command with an invalid actor name was decided")
            return
        }
        #expect(store.events(group).map(\.eventType) == [.memberAdded])
    }

    @Test func earlierCommandsOfTheGroupAreDecidedFirstFromTheLog() async throws {
        let processor = processor()
        let log = logJoinCreateUpdate()
        let (join, create, update) = (log.join, log.create, log.update)
        let (joinSeq, createSeq, updateSeq) = (log.joinSeq, log.createSeq, log.updateSeq)

        // The update arrives first (the others went to another replica, or to one that died):
        // the two earlier commands are decided from the log, in order, before it.
        #expect(try await processor.handle(delivery(update, sequence: updateSeq)) == .decided(.todoUpdated))
        let events = store.events(group)
        #expect(events.map(\.eventType) == [.memberAdded, .todoCreated, .todoUpdated])
        #expect(events.map(\.commandSequence) == [joinSeq, createSeq, updateSeq])
        #expect(events.map(\.groupVersion) == [1, 2, 3])
        // When the earlier ones are delivered, they are recognised as decided.
        #expect(try await processor.handle(delivery(create, sequence: createSeq, epoch: 2, redelivered: true)) == .decided(nil))
        #expect(try await processor.handle(delivery(join, sequence: joinSeq, epoch: 2, redelivered: true)) == .decided(nil))
        #expect(store.events(group).count == 3)
    }

    @Test func aCommandALookupMissedIsDecidedLateInsteadOfDropped() async throws {
        // A read of the command log that misses an earlier command (as a stale answer while the
        // stream's leader changes can) lets a later command be decided first. The earlier one,
        // delivered after, still gets its outcome; redeliveries of either get none.
        let processor = processor()
        let join = addOwner()
        let first = command("c1", .createTodo, todo: "t1") { $0.title = "first" }
        let second = command("c2", .createTodo, todo: "t2") { $0.title = "second" }
        let joinSeq = store.log(join), firstSeq = store.log(first), secondSeq = store.log(second)
        #expect(try await processor.handle(delivery(join, sequence: joinSeq)) == .decided(.memberAdded))
        let later = try await whileTheLogMisses(firstSeq) { try await processor.handle(delivery(second, sequence: secondSeq, epoch: 2)) }
        #expect(later == .decided(.todoCreated))
        #expect(try await processor.handle(delivery(first, sequence: firstSeq, epoch: 2)) == .decided(.todoCreated))
        #expect(store.events(group).map(\.commandID) == ["c0", "c2", "c1"])
        #expect(store.events(group).map(\.groupVersion) == [1, 2, 3])
        #expect(try await processor.handle(delivery(first, sequence: firstSeq, epoch: 3, redelivered: true)) == .decided(nil))
        #expect(try await processor.handle(delivery(second, sequence: secondSeq, epoch: 3, redelivered: true)) == .decided(nil))
        #expect(store.events(group).count == 3)
    }

    @Test func aMembershipCommandALookupMissedIsNotDecidedOutOfOrder() async throws {
        // command-api committed the membership in Postgres in stream order: deciding it after a
        // later command could contradict that order, so the sequence still decides for it.
        let processor = processor()
        let join = addOwner()
        let invite = command("c1", .addMember) { $0.memberUserID = "u2"; $0.memberUsername = "ursula"; $0.role = .member }
        let create = command("c2", .createTodo, todo: "t") { $0.title = "later" }
        let joinSeq = store.log(join), inviteSeq = store.log(invite), createSeq = store.log(create)
        #expect(try await processor.handle(delivery(join, sequence: joinSeq)) == .decided(.memberAdded))
        let later = try await whileTheLogMisses(inviteSeq) { try await processor.handle(delivery(create, sequence: createSeq, epoch: 2)) }
        #expect(later == .decided(.todoCreated))
        #expect(try await processor.handle(delivery(invite, sequence: inviteSeq, epoch: 2)) == .decided(nil))
        #expect(store.events(group).map(\.commandID) == ["c0", "c2"])
    }

    @Test func aStaleCacheIsReloadedNotRedecided() async throws {
        // Replica A decides c1; replica B, whose cache predates that, then gets c2.
        let replicaA = processor(), replicaB = processor()
        let join = addOwner()
        let joinSeq = store.log(join)
        #expect(try await replicaB.handle(delivery(join, sequence: joinSeq)) == .decided(.memberAdded))
        #expect(try await replicaA.handle(delivery(join, sequence: joinSeq, epoch: 1, redelivered: true)) == .decided(nil))
        let create = command("c1", .createTodo, todo: "t") { $0.title = "by A" }
        let update = command("c2", .updateTodo, todo: "t") { $0.title = "by B" }
        let createSeq = store.log(create), updateSeq = store.log(update)
        #expect(try await replicaA.handle(delivery(create, sequence: createSeq, epoch: 1)) == .decided(.todoCreated))
        // B's cached state does not know c1; with a new epoch it checks, reloads (instead of
        // deciding c1 a second time), and proceeds.
        #expect(try await replicaB.handle(delivery(update, sequence: updateSeq, epoch: 2)) == .decided(.todoUpdated))
        #expect(store.events(group).map(\.eventType) == [.memberAdded, .todoCreated, .todoUpdated])
    }

    @Test func inOneEpochNoOrderingLookupIsNeeded() async throws {
        let processor = processor()
        let join = addOwner()
        let create = command("c1", .createTodo, todo: "t") { $0.title = "first" }
        let joinSeq = store.log(join), createSeq = store.log(create)
        #expect(try await processor.handle(delivery(join, sequence: joinSeq)) == .decided(.memberAdded))
        // Remove the log: a lookup now would find nothing, so a pass shows none was needed.
        store.state.withLock { $0.commands[group] = [] }
        #expect(try await processor.handle(delivery(create, sequence: createSeq)) == .decided(.todoCreated))
    }

    @Test func anAppendWhoseAcknowledgementWasLostIsNotDecidedTwice() async throws {
        let processor = processor()
        let log = logJoinCreateUpdate()
        #expect(try await processor.handle(delivery(log.join, sequence: log.joinSeq)) == .decided(.memberAdded))
        store.state.withLock { $0.loseNextAcknowledgement = true }
        await #expect(throws: InMemoryEventStore.LostAcknowledgement.self) {
            try await processor.handle(delivery(log.create, sequence: log.createSeq))
        }
        // The retry finds the stored outcome; the next command builds on it.
        #expect(try await processor.handle(delivery(log.create, sequence: log.createSeq, redelivered: true)) == .decided(nil))
        #expect(try await processor.handle(delivery(log.update, sequence: log.updateSeq)) == .decided(.todoUpdated))
        let events = store.events(group)
        #expect(events.map(\.eventType) == [.memberAdded, .todoCreated, .todoUpdated])
        #expect(events.map(\.groupVersion) == [1, 2, 3])
        #expect(events.last?.version == 2)
    }

    @Test func aConflictReloadsAndDecidesAgain() async throws {
        let processor = processor()
        let join = addOwner()
        #expect(try await processor.handle(delivery(join, sequence: store.log(join))) == .decided(.memberAdded))
        // Another engine appends behind this one's back.
        try await appendForeignTodo()

        let create = command("c1", .createTodo, todo: "t") { $0.title = "same id" }
        #expect(try await processor.handle(delivery(create, sequence: store.log(create))) == .decided(.commandRejected))
        let events = store.events(group)
        #expect(events.map(\.groupVersion) == [1, 2, 3], "decided against the reloaded state, at the next version")
        #expect(events.last?.code == "todo_exists")
    }

    @Test func aRepublishedCommandDoesNotBlockLaterOnes() async throws {
        let processor = processor()
        let join = addOwner()
        let joinSeq = store.log(join)
        #expect(try await processor.handle(delivery(join, sequence: joinSeq)) == .decided(.memberAdded))
        let copySeq = store.log(join) // the same command id again, under another message id
        #expect(try await processor.handle(delivery(join, sequence: copySeq)) == .decided(nil))
        let create = command("c1", .createTodo, todo: "t") { $0.title = "later" }
        let createSeq = store.log(create)
        // After a restart (fresh state, new epoch) the copy is recognised as decided, not awaited.
        let restarted = self.processor()
        #expect(try await restarted.handle(delivery(create, sequence: createSeq, epoch: 7)) == .decided(.todoCreated))
        #expect(store.events(group).count == 2)
    }

    @Test func poisonMessagesAreDeadLettered() async throws {
        let processor = processor()
        let bad = CommandProcessor.Delivery(subject: "app.command.1.group.\(group)", payload: Data("{}".utf8), streamSequence: 1,
                                            epoch: 1, redelivered: false)
        guard case .deadLetter(let reason) = try await processor.handle(bad) else { Issue.record("not dead-lettered"); return }
        #expect(reason.contains("subject"), "the shard token does not match the group")
        let undecodable = CommandProcessor.Delivery(subject: GroupSubject.command(try GroupID(group)).subject,
                                                    payload: Data("nope".utf8), streamSequence: 2, epoch: 1, redelivered: false)
        guard case .deadLetter = try await processor.handle(undecodable) else { Issue.record("not dead-lettered"); return }
        #expect(store.events(group).isEmpty)
    }

    @Test func aRunOfCommandsIsAppendedAsOneMessage() async throws {
        let processor = processor()
        var commands = [addOwner()]
        for index in 1...10 { commands.append(command("c\(index)", .createTodo, todo: "t\(index)") { $0.title = "todo \(index)" }) }
        commands.append(command("c11", .updateTodo, todo: "t3") { $0.title = "changed in the same run" })
        let deliveries = try commands.map { try delivery($0, sequence: store.log($0)) }
        let outcomes = try await processor.handle(deliveries)
        #expect(outcomes == [.decided(.memberAdded)] + Array(repeating: .decided(.todoCreated), count: 10) + [.decided(.todoUpdated)])
        #expect(store.state.withLock { $0.appends } == 1, "twelve outcomes, one message")
        let events = store.events(group)
        #expect(events.map(\.groupVersion) == Array(1...12))
        #expect(events.last?.title == "changed in the same run")
        #expect(events.last?.version == 2)
    }

    @Test func aConflictInARunTakesTheRunBackAndDecidesAgainstWhatWasAppended() async throws {
        let processor = processor()
        let join = addOwner()
        #expect(try await processor.handle(delivery(join, sequence: store.log(join))) == .decided(.memberAdded))
        // Another engine appends behind this one's back: todo t exists now.
        try await appendForeignTodo()

        let run = [command("c1", .createTodo, todo: "u") { $0.title = "new" },
                   command("c2", .createTodo, todo: "t") { $0.title = "same id" },
                   command("c3", .updateTodo, todo: "t") { $0.notes = "on the foreign todo" }]
        let outcomes = try await processor.handle(try run.map { try delivery($0, sequence: store.log($0)) })
        #expect(outcomes == [.decided(.todoCreated), .decided(.commandRejected), .decided(.todoUpdated)])
        let events = store.events(group)
        #expect(events.map(\.groupVersion) == [1, 2, 3, 4, 5])
        #expect(events[3].code == "todo_exists")
        #expect(events[4].title == "from elsewhere" && events[4].version == 2)
        // What the engine kept equals the group rebuilt from its events.
        let kept = try #require(processor.cache.checkOut(group)).state
        let rebuilt = try await self.processor().checkOutState(of: GroupID(group)).0
        #expect(kept == rebuilt)
    }

    @Test func anEarlierCommandHeldByAnotherReplicaIsAwaitedNotDecidedTwice() async throws {
        let replicaA = processor(), replicaB = processor(handoffWait: .seconds(5))
        let log = logJoinCreateUpdate()
        // B gets the update while A still holds the join and the create.
        let b = Task { try await replicaB.handle(delivery(log.update, sequence: log.updateSeq, epoch: 2)) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(store.events(group).isEmpty, "B waits for the holder")
        let outcomes = try await replicaA.handle([try delivery(log.join, sequence: log.joinSeq),
                                                  try delivery(log.create, sequence: log.createSeq)])
        #expect(outcomes == [.decided(.memberAdded), .decided(.todoCreated)])
        #expect(try await b.value == .decided(.todoUpdated))
        #expect(store.events(group).map(\.eventType) == [.memberAdded, .todoCreated, .todoUpdated])
        #expect(store.state.withLock { $0.appends } == 2, "A's run and B's command; nothing decided twice or thrown away")
    }

    @Test func decidingKeepsTheGroupsStorageInPlace() async throws {
        // A group of 100,000 todos, cached. Updating some of them must change the state in place:
        // a copy of the whole state (what made a command cost as much as its group was big) would
        // show as new storage for the todos.
        let processor = processor()
        let join = addOwner()
        #expect(try await processor.handle(delivery(join, sequence: store.log(join))) == .decided(.memberAdded))
        // Built in a scope of its own, so the cache holds the only reference.
        let (epoch, storage) = try { () throws -> (UInt64, UnsafeRawPointer) in
            var (state, epoch) = try #require(processor.cache.checkOut(group))
            state.todos.reserveCapacity(100_001)
            for index in 0..<100_000 {
                state.todos["t\(index)"] = TodoState(todoID: "t\(index)", title: "todo", notes: "", status: .todo, position: Double(index),
                                                     assignee: nil, labels: [], createdBy: owner.0, createdByName: owner.1,
                                                     createdAt: Date(), version: 1, isDeleted: false)
            }
            state.liveTodos = 100_000
            let storage = unsafeBitCast(state.todos, to: UnsafeRawPointer.self)
            processor.cache.put(state, epoch: epoch)
            return (epoch, storage)
        }()
        let updates = (0..<300).map { index in command("u\(index)", .updateTodo, todo: "t\(index * 7)") { $0.title = "changed" } }
        let outcomes = try await processor.handle(try updates.map { try delivery($0, sequence: store.log($0), epoch: epoch) })
        #expect(outcomes.allSatisfy { $0 == .decided(.todoUpdated) })
        let after = try #require(processor.cache.checkOut(group)).state
        #expect(unsafeBitCast(after.todos, to: UnsafeRawPointer.self) == storage, "the todos were copied")
        #expect(after.todos["t7"]?.title == "changed")
    }
}
