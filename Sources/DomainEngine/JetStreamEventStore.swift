import Contracts
import Foundation
import Logging
import NATS
import Sharding

/// Events on `app.event.<shard>.group.<gid>` in the EVENTS stream; `Nats-Msg-Id` = `event_id` and
/// `Nats-Expected-Last-Subject-Sequence` make appends idempotent and race-free.
public struct JetStreamEventStore: EventStore {
    public let jetStream: JetStream
    public let stream: String
    let logger: Logger

    public let commandStream: String

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

    public func history(of group: GroupID) async throws -> GroupHistory {
        var events: [StoredEvent] = []
        var lastSequence: UInt64 = 0
        for try await message in jetStream.replay(stream: stream, filter: GroupSubject.event(group).subject) {
            lastSequence = message.sequence
            do {
                events.append(StoredEvent(event: try TodoEvent(json: message.payload), sequence: message.sequence))
            } catch {
                // Only the engine publishes here, so this means a foreign or corrupt message; it
                // cannot take part in the group's state, and the sink dead-letters it.
                logger.error("undecodable event skipped while loading group",
                             metadata: ["group.id": "\(group)", "event.sequence": "\(message.sequence)", "error": "\(error)"])
            }
        }
        return GroupHistory(events: events, lastSequence: lastSequence)
    }

    public func append(_ event: TodoEvent, to group: GroupID, expectedLastSequence: UInt64) async throws -> AppendOutcome {
        let payload = event.jsonData()
        do {
            let ack = try await jetStream.publish(OutgoingMessage(
                subject: GroupSubject.event(group).subject, payload: payload, msgID: event.eventID,
                expectedLastSubjectSequence: expectedLastSequence))
            return ack.duplicate ? .duplicate(sequence: ack.sequence) : .stored(sequence: ack.sequence)
        } catch let error as NATSError where error.kind == .wrongLastSequence {
            throw EventStoreError.sequenceConflict
        }
    }
}
