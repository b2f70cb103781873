import Foundation

/// The payload of one EVENTS message: either one event (a JSON object) or a run of one group's
/// consecutive events appended at once (a JSON array of event objects, `group_version` rising by
/// one from each to the next). The engine writes a run as one message so that one
/// `Nats-Expected-Last-Subject-Sequence` check covers all of it; every reader unpacks it into the
/// single events (each keeps its own `event_id` and `group_version`; they share the stream sequence).
public enum EventMessage {
    /// Most events in one message, and the byte budget the engine keeps a run under (nats-server's
    /// default `max_payload` is 1 MiB; one event is at most ~20 KB).
    public static let maxEvents = 256
    public static let maxBytes = 512 * 1024

    /// An upper bound of the event's JSON size: its text fields at most double when escaped
    /// (only line feed and tab among control characters are ever stored), plus the fixed fields.
    public static func estimatedSize(of event: TodoEvent) -> Int {
        var text = (event.title?.utf8.count ?? 0) + (event.notes?.utf8.count ?? 0) + (event.reason?.utf8.count ?? 0)
        text += (event.labels ?? []).reduce(0) { $0 + $1.utf8.count + 3 }
        return 2 * text + 2048
    }

    /// One event of a message: the decoded event and its own JSON text.
    public struct Part: Sendable {
        public let event: TodoEvent
        public let json: Substring.UTF8View.SubSequence
        public var jsonText: String { String(Substring(json)) }
    }

    public struct InvalidMessage: Error, CustomStringConvertible, Equatable {
        public let reason: String
        public var description: String { reason }
    }

    /// The payload for `events` (one group's, in order): the object itself for one event, an array
    /// for several.
    public static func encode(_ events: [TodoEvent]) -> Data {
        precondition(!events.isEmpty, "an event message holds at least one event")
        if events.count == 1 { return events[0].jsonData() }
        var bytes: [UInt8] = [UInt8(ascii: "[")]
        for (index, event) in events.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += event.jsonBytes()
        }
        bytes.append(UInt8(ascii: "]"))
        return Data(bytes)
    }

    /// Byte ranges of the events in `payload` (one range for a single object).
    public static func ranges(in payload: some ContiguousBytes) throws -> [Range<Int>] {
        try JSONReader.read(payload) { reader throws(MessageJSONError) -> [Range<Int>] in
            guard reader.nextByte == UInt8(ascii: "[") else {
                let start = reader.position
                try reader.skipValue()
                return [start..<reader.position]
            }
            var ranges: [Range<Int>] = []
            try reader.readArray { reader throws(MessageJSONError) in
                _ = reader.nextByte
                let start = reader.position
                try reader.skipValue(depth: 1)
                ranges.append(start..<reader.position)
            }
            return ranges
        }
    }

    /// Every event in `payload`, in order, each with its own JSON text. Throws unless the message
    /// holds 1...`maxEvents` valid events of one group with consecutive versions.
    public static func decode(_ payload: Data) throws -> [TodoEvent] {
        try decodeParts(String(decoding: payload, as: UTF8.self)).map(\.event)
    }

    /// `decode`, keeping each event's JSON text (a slice of `text`, which must be the payload).
    public static func decodeParts(_ text: String) throws -> [Part] {
        var text = text
        text.makeContiguousUTF8()
        let utf8 = text.utf8
        let ranges = try text.withUTF8 { try Self.ranges(in: UnsafeRawBufferPointer($0)) }
        guard !ranges.isEmpty else { throw InvalidMessage(reason: "an event message holds no event") }
        guard ranges.count <= maxEvents else { throw InvalidMessage(reason: "an event message holds more than \(maxEvents) events") }
        var parts: [Part] = []
        parts.reserveCapacity(ranges.count)
        for range in ranges {
            let start = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
            let end = utf8.index(start, offsetBy: range.count)
            let slice = utf8[start..<end]
            let event = try TodoEvent(json: Array(slice))
            if let previous = parts.last?.event {
                guard event.groupID == previous.groupID else {
                    throw InvalidMessage(reason: "an event message mixes groups (\(previous.groupID), \(event.groupID))")
                }
                guard event.groupVersion == previous.groupVersion + 1 else {
                    throw InvalidMessage(reason: "group versions in an event message must rise by one (\(previous.groupVersion), \(event.groupVersion))")
                }
            }
            parts.append(Part(event: event, json: slice))
        }
        return parts
    }
}
