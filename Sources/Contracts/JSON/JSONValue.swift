import Foundation

/// Any JSON value, for documents whose fields are checked one by one (HTTP request bodies: an
/// unknown or mistyped field is reported by name instead of as "invalid JSON"). Parsed by the
/// same strict reader as the bus messages, in one pass.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses one document. Beyond the reader's rules (RFC 8259, valid UTF-8, no trailing data),
    /// an object may not name a key twice (which of the two would count is ambiguous), and
    /// nesting is limited to `maxDepth` levels.
    public static func parse(_ data: some ContiguousBytes, maxDepth: Int = 64) throws(MessageJSONError) -> JSONValue {
        try JSONReader.read(data) { reader throws(MessageJSONError) in try reader.readValue(depth: 0, maxDepth: maxDepth) }
    }

    /// Parses a document that must be an object, by the same rules, keeping nothing of the values
    /// of `skipping` (they are checked, then dropped): a large part the reader has no use for
    /// costs no memory (an import reads past an export's history).
    public static func parseObject(_ data: some ContiguousBytes, skipping: Set<String>,
                                   maxDepth: Int = 64) throws(MessageJSONError) -> [String: JSONValue] {
        try JSONReader.read(data) { reader throws(MessageJSONError) in
            var object: [String: JSONValue] = [:]
            var skipped: Set<String> = []
            try reader.readObject { reader, key throws(MessageJSONError) in
                let keyOffset = reader.position
                let repeated: Bool
                if skipping.contains(key) {
                    try reader.skipValue(depth: 1)
                    repeated = !skipped.insert(key).inserted
                } else {
                    repeated = object.updateValue(try reader.readValue(depth: 1, maxDepth: maxDepth), forKey: key) != nil
                }
                if repeated { throw MessageJSONError(message: "the key \(key.debugDescription) appears twice", offset: keyOffset) }
            }
            return object
        }
    }
}

extension JSONReader {
    mutating func readValue(depth: Int, maxDepth: Int) throws(MessageJSONError) -> JSONValue {
        guard depth < maxDepth else { throw error("nested too deeply") }
        if try consumeNull() { return .null }
        switch nextByte {
        case .quote:
            return .string(try readString())
        case .openBrace:
            var object: [String: JSONValue] = [:]
            try readObject { reader, key throws(MessageJSONError) in
                let keyOffset = reader.position
                let value = try reader.readValue(depth: depth + 1, maxDepth: maxDepth)
                guard object.updateValue(value, forKey: key) == nil else {
                    throw MessageJSONError(message: "the key \(key.debugDescription) appears twice", offset: keyOffset)
                }
            }
            return .object(object)
        case .openBracket:
            var items: [JSONValue] = []
            try readArray { reader throws(MessageJSONError) in items.append(try reader.readValue(depth: depth + 1, maxDepth: maxDepth)) }
            return .array(items)
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return .bool(try readBool())
        default:
            return .number(try readDouble())
        }
    }
}
