import Foundation

/// Writes one flat JSON object the way `MessageCoding.encoder()` does (keys as given, which the
/// caller passes in sorted order; nil fields left out; `/` not escaped; numbers as Swift prints
/// them, an integral double without `.0`), byte for byte, straight into a byte array. Public for
/// the other hot paths that answer with a small fixed object (command-api's 202).
public struct JSONObjectWriter {
    private(set) var bytes: [UInt8]
    private var empty = true

    public init(capacity: Int = 512) {
        bytes = []
        bytes.reserveCapacity(capacity)
        bytes.append(.openBrace)
    }

    /// The finished object.
    public mutating func finish() -> [UInt8] {
        bytes.append(.closeBrace)
        return bytes
    }

    private mutating func key(_ key: StaticString) {
        if !empty { bytes.append(.comma) }
        empty = false
        bytes.append(.quote)
        bytes.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        bytes.append(.quote)
        bytes.append(.colon)
    }

    public mutating func field(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        key(name)
        appendString(value)
    }

    public mutating func field<T: RawRepresentable<String>>(_ name: StaticString, _ value: T?) {
        field(name, value?.rawValue)
    }

    public mutating func field<T: BinaryInteger>(_ name: StaticString, _ value: T?) {
        guard let value else { return }
        key(name)
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func field(_ name: StaticString, _ value: Bool?) {
        guard let value else { return }
        key(name)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func field(_ name: StaticString, _ value: Double?) {
        guard let value else { return }
        key(name)
        // As JSONEncoder: Swift's shortest round-trip text, without a trailing ".0".
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: text.utf8)
    }

    public mutating func field(_ name: StaticString, _ value: Date?) {
        guard let value else { return }
        key(name)
        bytes.append(.quote)
        Timestamp.append(value, to: &bytes)
        bytes.append(.quote)
    }

    public mutating func field(_ name: StaticString, _ values: [String]?) {
        guard let values else { return }
        key(name)
        bytes.append(.openBracket)
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(.comma) }
            appendString(value)
        }
        bytes.append(.closeBracket)
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func appendString(_ string: String) {
        bytes.append(.quote)
        var string = string
        string.withUTF8 { utf8 in
            var clean = utf8.startIndex
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == .quote || byte == .backslash else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<index]))
                bytes.append(.backslash)
                switch byte {
                case .quote, .backslash: bytes.append(byte)
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                default:
                    bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              Self.hexDigits[Int(byte >> 4)], Self.hexDigits[Int(byte & 0xF)]])
                }
                clean = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<utf8.endIndex]))
        }
        bytes.append(.quote)
    }
}
