import Contracts
import Sharding

/// An event as stored, with its position in the EVENTS stream (the events of one run share it).
public struct StoredEvent: Sendable, Equatable {
    public let event: TodoEvent
    public let sequence: UInt64

    public init(event: TodoEvent, sequence: UInt64) {
        self.event = event
        self.sequence = sequence
    }
}

public enum AppendOutcome: Sendable, Equatable {
    case stored(sequence: UInt64)
    /// A message with this id (its first event's id) was already stored (at `sequence`); nothing
    /// new was written.
    case duplicate(sequence: UInt64)
}

public enum EventStoreError: Error, Equatable {
    /// Someone appended to the group since `expectedLastSequence`: reload and decide again.
    case sequenceConflict
}

/// Where a group's events live. `JetStreamEventStore` in production; an in-memory store in tests.
public protocol EventStore: Sendable {
    /// The group's events stored after stream sequence `sequence` (0: all), in order, and the
    /// sequence of the last message on the group's subject (which may be a message that is not a
    /// valid event; `sequence` when there is none after it).
    func history(of group: GroupID, after sequence: UInt64) async throws -> GroupHistory

    /// The group's first command at or after `sequence` in COMMANDS (nil `command`: the message
    /// is not a decodable command). Nil when there is none.
    func command(of group: GroupID, from sequence: UInt64) async throws -> LoggedCommand?

    /// The group's commands at or after `sequence`, in order, at most `limit` of them.
    func commands(of group: GroupID, from sequence: UInt64, limit: Int) async throws -> [LoggedCommand]

    /// Appends `events` (one group's run, consecutive versions) as one message, only if the
    /// group's last message is still at `expectedLastSequence` (0: none yet); throws
    /// `EventStoreError.sequenceConflict` otherwise. Any other error is transient.
    func append(_ events: [TodoEvent], to group: GroupID, expectedLastSequence: UInt64) async throws -> AppendOutcome
}

extension EventStore {
    /// One lookup per command.
    public func commands(of group: GroupID, from sequence: UInt64, limit: Int) async throws -> [LoggedCommand] {
        var found: [LoggedCommand] = []
        var from = sequence
        while found.count < limit, let next = try await command(of: group, from: from) {
            found.append(next)
            from = next.sequence + 1
        }
        return found
    }

    public func history(of group: GroupID) async throws -> GroupHistory {
        try await history(of: group, after: 0)
    }

    public func append(_ event: TodoEvent, to group: GroupID, expectedLastSequence: UInt64) async throws -> AppendOutcome {
        try await append([event], to: group, expectedLastSequence: expectedLastSequence)
    }
}

public struct GroupHistory: Sendable, Equatable {
    public var events: [StoredEvent]
    public var lastSequence: UInt64
    /// Event messages of the group that could not be decoded (skipped).
    public var skippedMessages: Int

    public init(events: [StoredEvent], lastSequence: UInt64, skippedMessages: Int = 0) {
        self.events = events
        self.lastSequence = lastSequence
        self.skippedMessages = skippedMessages
    }
}

/// A command as logged in COMMANDS, for deciding a group's commands in stream order.
public struct LoggedCommand: Sendable, Equatable {
    public let sequence: UInt64
    public let command: TodoCommand?

    public init(sequence: UInt64, command: TodoCommand?) {
        self.sequence = sequence
        self.command = command
    }
}
