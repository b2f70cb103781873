import Contracts
import Foundation
import Postgres

/// An event the projection cannot hold (Postgres refuses it every time: text with NUL, a date out
/// of range, …). The engine never emits one; the bus may still carry one (a bug, an older engine,
/// a forged message), and one such event must not stop its group (DESIGN §3).
///
/// In one transaction: a stand-in takes its place in the projection, and the event as received
/// goes into `failed_projections` (for operators and for `todo rebuild-projection`, which tries
/// it again). The stand-in is a `command.rejected` event with code `projection_failed` at the
/// same group version, made of the original's ids with whatever Postgres cannot take removed. So
/// the group's offset moves past it and the command reports `rejected`, never `pending` forever.
/// An event whose group version is already taken by another event (only a forged one can be) is
/// recorded without a stand-in.
enum FailedProjection {
    static let code = "projection_failed"

    /// Records `event` as failed with `error` and writes its stand-in with `writer`.
    static func record(_ event: ProjectedEvent, error: String, writer: ProjectionWriter, on connection: PostgresConnection) throws {
        let standIn = standIn(for: event)
        // The stand-in first: the live tables are locked before failed_projections, in the order
        // the rebuild's swap takes them. A forged event at a version the group already has (a
        // second, different event there) needs none: the version is taken, the offset is past it.
        let taken = try connection.queryPrepared("SELECT 1 FROM \(writer.tables.events) WHERE group_id = $1 AND group_version = $2",
                                                 standIn.event.groupID, standIn.event.groupVersion)
        if taken.isEmpty { try writer.apply([standIn], on: connection) }
        _ = try connection.queryPrepared("""
            INSERT INTO failed_projections (event_id, group_id, group_version, stream_seq, event_type, error, payload)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (event_id) DO UPDATE SET error = EXCLUDED.error, failed_at = now()
            """, standIn.event.eventID, standIn.event.groupID, event.event.groupVersion, Int64(event.streamSequence),
            clean(event.event.eventType.rawValue, limit: 64), clean(error, limit: 2000), Data(event.json.utf8))
    }

    /// The `command.rejected` event that stands in for `event` in the projection.
    /// Its reason says what happened, not the database's error (that stays in
    /// `failed_projections.error` for operators).
    static func standIn(for event: ProjectedEvent) -> ProjectedEvent {
        let original = event.event
        let todoID = original.todoID.flatMap { TextRules.isValidID($0) ? $0 : nil }
        let reason = "the outcome (\(clean(original.eventType.rawValue, limit: 64))) could not be stored; operators have been told"
        let standIn = TodoEvent(
            eventID: clean(original.eventID, limit: 200), commandID: clean(original.commandID, limit: 200),
            eventType: .commandRejected, groupID: clean(original.groupID, limit: 128), todoID: todoID,
            actorUserID: clean(original.actorUserID, limit: 128), actorName: clean(original.actorName, limit: 64),
            occurredAt: original.occurredAt, shardID: original.shardID, groupVersion: original.groupVersion,
            commandSequence: original.commandSequence, code: code, reason: reason)
        return ProjectedEvent(event: standIn, json: String(decoding: standIn.jsonBytes(), as: UTF8.self),
                              streamSequence: event.streamSequence)
    }

    /// `text` without control characters or noncharacters, at most `limit` characters.
    static func clean(_ text: String, limit: Int) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if value < 0x20 || (0x7F...0x9F).contains(value) || scalar.properties.isNoncharacterCodePoint { continue }
            scalars.append(scalar)
        }
        let cleaned = String(scalars)
        return cleaned.count <= limit ? cleaned : String(cleaned.prefix(limit))
    }
}
