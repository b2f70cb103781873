import Contracts
import Sharding

/// An event as stored, with its position in the EVENTS stream.
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
    /// An event with this id was already stored (at `sequence`); nothing new was written.
    case duplicate(sequence: UInt64)
}

public enum EventStoreError: Error, Equatable {
    /// Someone appended to the group since `expectedLastSequence`: reload and decide again.
    case sequenceConflict
}

/// Where a group's events live. `JetStreamEventStore` in production; an in-memory store in tests.
public protocol EventStore: Sendable {
    /// Every event of the group, in order, and the sequence of the last message on the group's
    /// subject (which may be a message that is not a valid event; 0 when there is none).
    func history(of group: GroupID) async throws -> GroupHistory

    /// The group's first command at or after `sequence` in COMMANDS (nil `command`: the message
    /// is not a decodable command). Nil when there is none.
    func command(of group: GroupID, from sequence: UInt64) async throws -> LoggedCommand?

    /// Appends only if the group's last event is still at `expectedLastSequence` (0: no event yet);
    /// throws `EventStoreError.sequenceConflict` otherwise. Any other error is transient.
    func append(_ event: TodoEvent, to group: GroupID, expectedLastSequence: UInt64) async throws -> AppendOutcome
}

public struct GroupHistory: Sendable, Equatable {
    public var events: [StoredEvent]
    public var lastSequence: UInt64

    public init(events: [StoredEvent], lastSequence: UInt64) {
        self.events = events
        self.lastSequence = lastSequence
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
