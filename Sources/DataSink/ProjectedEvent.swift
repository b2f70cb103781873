import Contracts
import Foundation
import Postgres

/// One event ready to be written: the decoded event, its JSON as received, and its stream position.
public struct ProjectedEvent: Sendable {
    public let event: TodoEvent
    public let json: String
    public let streamSequence: UInt64

    public init(event: TodoEvent, json: String, streamSequence: UInt64) {
        self.event = event
        self.json = json
        self.streamSequence = streamSequence
    }

    /// Decodes a message payload; throws for anything that is not a valid event.
    public init(payload: Data, streamSequence: UInt64) throws {
        event = try MessageCoding.sharedDecoder.decode(TodoEvent.self, from: payload)
        guard event.groupVersion > 0 else { throw InvalidEvent(reason: "group_version must be positive") }
        json = String(decoding: payload, as: UTF8.self)
        self.streamSequence = streamSequence
    }

    public struct InvalidEvent: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// The staging row, in `ProjectionWriter.stagingColumns` order.
    var stagingRow: [any PostgresEncodable] {
        let e = event
        return [
            e.eventID, e.commandID, e.groupID, e.groupVersion, Int64(streamSequence), e.eventType.rawValue, e.todoID,
            e.actorUserID, e.actorName, json, e.occurredAt, e.title, e.notes, e.status?.rawValue, e.position, e.dueDate,
            e.assignee, e.labels, e.createdBy, e.createdByName, e.createdAt, e.version,
        ]
    }
}
