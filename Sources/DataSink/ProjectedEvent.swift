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

    /// Decodes a payload of one event; throws for anything that is not a valid event.
    public init(payload: Data, streamSequence: UInt64) throws {
        let all = try Self.all(in: payload, streamSequence: streamSequence)
        guard all.count == 1 else { throw InvalidEvent(reason: "expected one event, found \(all.count)") }
        self = all[0]
    }

    /// The events of one EVENTS message (one, or a run of the group's; see `EventMessage`), each
    /// with its own JSON text; throws unless every one is valid.
    public static func all(in payload: Data, streamSequence: UInt64) throws -> [ProjectedEvent] {
        try EventMessage.decodeParts(String(decoding: payload, as: UTF8.self)).map { part in
            guard part.event.groupVersion > 0 else { throw InvalidEvent(reason: "group_version must be positive") }
            return ProjectedEvent(event: part.event, json: part.jsonText, streamSequence: streamSequence)
        }
    }

    public struct InvalidEvent: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Writes the staging row, in `ProjectionWriter.stagingColumns` order, each field of its
    /// staging column's type (binary COPY).
    func writeStagingRow(to row: inout BinaryCopyRowEncoder) {
        let e = event
        row.append(e.eventID)
        row.append(e.commandID)
        row.append(e.groupID)
        row.append(e.groupVersion)
        row.append(Int64(streamSequence))
        row.append(e.eventType.rawValue)
        row.append(e.todoID)
        row.append(e.actorUserID)
        row.append(e.actorName)
        row.append(json)
        row.append(e.occurredAt)
        for field in TodoField.allCases {
            // By the declared kind, which fixes the staging column's type.
            switch field.kind {
            case .text, .date, .username: row.append(e[field]?.text)
            case .status: row.append(e[field]?.status?.rawValue)
            case .labels: row.append(e[field]?.labels)
            case .number: row.append(e[field]?.number)
            }
        }
        row.append(e.createdBy)
        row.append(e.createdByName)
        row.append(e.createdAt)
        row.append(e.version)
    }
}
