import Foundation
import CNATS

/// Message headers. Names are kept as sent (NATS headers are case-sensitive on the wire).
public struct NATSHeaders: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public private(set) var entries: [(name: String, value: String)] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { add(name, value) }
    }

    public mutating func add(_ name: String, _ value: String) {
        entries.append((name, value))
    }

    /// The first value of `name`.
    public subscript(name: String) -> String? {
        entries.first { $0.name == name }?.value
    }

    public var isEmpty: Bool { entries.isEmpty }

    public static func == (lhs: NATSHeaders, rhs: NATSHeaders) -> Bool {
        lhs.entries.elementsEqual(rhs.entries) { $0.name == $1.name && $0.value == $1.value }
    }

    /// Reads every header of a libnats message. Not thread-safe for one message (libnats parses
    /// headers lazily): call it where the message is owned.
    static func read(from message: OpaquePointer) -> NATSHeaders {
        var headers = NATSHeaders()
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var count: Int32 = 0
        guard natsMsgHeader_Keys(message, &keys, &count) == NATS_OK, let keys else { return headers }
        defer { free(keys) }
        for index in 0..<Int(count) {
            guard let key = keys[index] else { continue }
            var values: UnsafeMutablePointer<UnsafePointer<CChar>?>?
            var valueCount: Int32 = 0
            guard natsMsgHeader_Values(message, key, &values, &valueCount) == NATS_OK, let values else { continue }
            defer { free(values) }
            let name = String(cString: key)
            for valueIndex in 0..<Int(valueCount) {
                if let value = values[valueIndex] { headers.add(name, String(cString: value)) }
            }
        }
        return headers
    }

    func write(to message: OpaquePointer) throws(NATSError) {
        for (name, value) in entries {
            try NATSError.check(natsMsgHeader_Add(message, name, value), "set header \(name)")
        }
    }
}

/// The header names JetStream understands.
public enum JetStreamHeader {
    public static let msgID = "Nats-Msg-Id"
    public static let expectedLastSubjectSequence = "Nats-Expected-Last-Subject-Sequence"
    public static let expectedStream = "Nats-Expected-Stream"
}
