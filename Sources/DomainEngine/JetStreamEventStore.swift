import Contracts
import Foundation
import Logging
import NATS
import Sharding

/// Events on `app.event.<shard>.group.<gid>` in the EVENTS stream, one message per event or per
/// run of events (`EventMessage`); `Nats-Msg-Id` = the first event's `event_id` and
/// `Nats-Expected-Last-Subject-Sequence` make appends idempotent and race-free.
public struct JetStreamEventStore: EventStore {
    public let jetStream: JetStream
    public let stream: String
    let logger: Logger

    public let commandStream: String
    /// A tail of up to this many messages is read by direct gets (one request each); a longer one
    /// (or a whole group) through an ordered consumer.
    static let directTail = 8

    public init(jetStream: JetStream, stream: String = SubjectKind.event.streamName,
                commandStream: String = SubjectKind.command.streamName, logger: Logger) {
        self.jetStream = jetStream
        self.stream = stream
        self.commandStream = commandStream
        self.logger = logger
    }

    public func command(of group: GroupID, from sequence: UInt64) async throws -> LoggedCommand? {
        guard let message = try await jetStream.nextMessage(stream: commandStream, subject: GroupSubject.command(group).subject,
                                                            from: sequence) else { return nil }
        let command = try? TodoCommand(json: message.payload)
        return LoggedCommand(sequence: message.sequence, command: command)
    }

    /// One ordered replay of the group's command subject instead of a request per command.
    public func commands(of group: GroupID, from sequence: UInt64, limit: Int) async throws -> [LoggedCommand] {
        var found: [LoggedCommand] = []
        for try await message in jetStream.replay(stream: commandStream, filter: GroupSubject.command(group).subject, from: sequence) {
            found.append(LoggedCommand(sequence: message.sequence, command: try? TodoCommand(json: message.payload)))
            if found.count >= limit { break }
        }
        return found
    }

    public func history(of group: GroupID, after sequence: UInt64) async throws -> GroupHistory {
        var history = GroupHistory(events: [], lastSequence: sequence)
        let subject = GroupSubject.event(group).subject
        if sequence > 0 {
            // Usually a short tail (what another replica appended): a few direct gets.
            for _ in 0..<Self.directTail {
                guard let message = try await jetStream.nextMessage(stream: stream, subject: subject, from: history.lastSequence + 1)
                else { return history }
                add(message.payload, sequence: message.sequence, group: group, to: &history)
            }
        }
        for try await message in jetStream.replay(stream: stream, filter: subject, from: history.lastSequence + 1) {
            add(message.payload, sequence: message.sequence, group: group, to: &history)
        }
        return history
    }

    private func add(_ payload: Data, sequence: UInt64, group: GroupID, to history: inout GroupHistory) {
        history.lastSequence = sequence
        do {
            for event in try EventMessage.decode(payload) {
                history.events.append(StoredEvent(event: event, sequence: sequence))
            }
        } catch {
            history.skippedMessages += 1
            // Only the engine publishes here, so this means a foreign or corrupt message; it
            // cannot take part in the group's state, and the sink dead-letters it.
            logger.error("undecodable event message skipped while loading group",
                         metadata: ["group.id": "\(group)", "event.sequence": "\(sequence)", "error": "\(error)"])
        }
    }

    public func append(_ events: [TodoEvent], to group: GroupID, expectedLastSequence: UInt64) async throws -> AppendOutcome {
        do {
            let ack = try await jetStream.publish(OutgoingMessage(
                subject: GroupSubject.event(group).subject, payload: EventMessage.encode(events), msgID: events[0].eventID,
                expectedLastSubjectSequence: expectedLastSequence))
            return ack.duplicate ? .duplicate(sequence: ack.sequence) : .stored(sequence: ack.sequence)
        } catch let error as NATSError where error.kind == .wrongLastSequence {
            throw EventStoreError.sequenceConflict
        }
    }
}
