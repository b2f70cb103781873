import Foundation

/// Why a message is not valid JSON, or not the expected shape, and where.
public struct MessageJSONError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    /// Byte offset in the document.
    public let offset: Int

    public var description: String { "\(message) (at byte \(offset))" }
}

/// A strict reader of one JSON document (RFC 8259), for the bus messages (and, through
/// `JSONValue`, HTTP request bodies): the caller walks the document it expects (an object, its
/// keys, typed values) and the reader checks the syntax as it goes, skipping values it is not
/// asked for. No intermediate tree is built, so decoding a
/// message costs about one pass over its bytes; `JSONDecoder` costs ten times that here.
///
/// Invalid UTF-8, control characters in strings, bad escapes, leading zeros, trailing data and
/// nesting deeper than 512 levels are errors, as for `JSONDecoder`; trailing commas too (which
/// `JSONDecoder` lets pass).
struct JSONReader {
    private let bytes: UnsafeRawBufferPointer
    private(set) var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Reads the document in `data` with `body`, then requires that nothing but whitespace follows.
    static func read<T>(_ data: some ContiguousBytes, _ body: (inout JSONReader) throws(MessageJSONError) -> T) throws(MessageJSONError) -> T {
        let result: Result<T, MessageJSONError> = data.withUnsafeBytes { raw in
            var reader = JSONReader(raw)
            do throws(MessageJSONError) {
                let value = try body(&reader)
                try reader.finish()
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    func error(_ message: String) -> MessageJSONError {
        MessageJSONError(message: message, offset: position)
    }

    // MARK: Structure

    /// Walks an object: `field` is called with each key and must read or skip its value.
    mutating func readObject(_ field: (inout JSONReader, String) throws(MessageJSONError) -> Void) throws(MessageJSONError) {
        try expect(.openBrace, "expected an object")
        if consume(.closeBrace) { return }
        while true {
            let key = try readString()
            try expect(.colon, "expected ':' after a key")
            try field(&self, key)
            if consume(.comma) { continue }
            try expect(.closeBrace, "expected ',' or '}' in an object")
            return
        }
    }

    /// Walks an array: `element` is called for each element and must read or skip it.
    mutating func readArray(_ element: (inout JSONReader) throws(MessageJSONError) -> Void) throws(MessageJSONError) {
        try expect(.openBracket, "expected an array")
        if consume(.closeBracket) { return }
        while true {
            try element(&self)
            if consume(.comma) { continue }
            try expect(.closeBracket, "expected ',' or ']' in an array")
            return
        }
    }

    /// The first byte of the next value (after whitespace), if any.
    var nextByte: UInt8? {
        mutating get {
            skipWhitespace()
            return peekByte
        }
    }

    /// `null` (consumed, returns true) or any other value (left in place, returns false).
    mutating func consumeNull() throws(MessageJSONError) -> Bool {
        skipWhitespace()
        guard peekByte == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    /// Requires that only whitespace is left.
    mutating func finish() throws(MessageJSONError) {
        skipWhitespace()
        guard position == bytes.count else { throw error("unexpected data after the document") }
    }

    // MARK: Values

    mutating func readString() throws(MessageJSONError) -> String {
        try expect(.quote, "expected a string")
        let start = position
        var allBits: UInt8 = 0
        while position < bytes.count {
            let byte = bytes[position]
            if byte == .quote {
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
                let string: String
                if allBits < 0x80 {
                    // ASCII is valid UTF-8: the cheap constructor (`String(validating:)` was a fifth
                    // of the data sink's CPU, most of it on strings like these).
                    string = String(decoding: slice, as: UTF8.self)
                } else {
                    guard let validated = String(validating: slice, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                    string = validated
                }
                position += 1
                return string
            }
            if byte == .backslash { return try readEscapedString(from: start) }
            if byte < 0x20 { throw error("control character in a string") }
            allBits |= byte
            position += 1
        }
        throw error("unterminated string")
    }

    mutating func readBool() throws(MessageJSONError) -> Bool {
        skipWhitespace()
        switch peekByte {
        case UInt8(ascii: "t"): try literal("true"); return true
        case UInt8(ascii: "f"): try literal("false"); return false
        default: throw error("expected true or false")
        }
    }

    /// An integer; `1.0` and `1e2` count (as for JSONDecoder) when the value is exactly an
    /// integer in range, computed in decimal (`68067055283344724.5` is not one).
    mutating func readInt64() throws(MessageJSONError) -> Int64 {
        let number = try scanNumber()
        guard let magnitude = exactMagnitude(number),
              let value = number.negative
                ? (magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil)
                : Int64(exactly: magnitude)
        else { throw MessageJSONError(message: "\(text(of: number)) is not an integer in range", offset: number.start) }
        return value
    }

    mutating func readInt() throws(MessageJSONError) -> Int {
        Int(try readInt64())
    }

    mutating func readUInt64() throws(MessageJSONError) -> UInt64 {
        let number = try scanNumber()
        guard let magnitude = exactMagnitude(number), !number.negative || magnitude == 0 else {
            throw MessageJSONError(message: "\(text(of: number)) is not a non-negative integer in range", offset: number.start)
        }
        return magnitude
    }

    mutating func readDouble() throws(MessageJSONError) -> Double {
        try readDouble(try scanNumber())
    }

    mutating func readStringArray() throws(MessageJSONError) -> [String] {
        var strings: [String] = []
        try readArray { reader throws(MessageJSONError) in strings.append(try reader.readString()) }
        return strings
    }

    /// A string naming one case of `T`.
    mutating func readEnum<T: RawRepresentable<String>>(_: T.Type) throws(MessageJSONError) -> T {
        let start = position
        let raw = try readString()
        guard let value = T(rawValue: raw) else {
            throw MessageJSONError(message: "\(raw.debugDescription) is not a valid \(T.self)", offset: start)
        }
        return value
    }

    /// An ISO 8601 timestamp in a string.
    mutating func readDate() throws(MessageJSONError) -> Date {
        let start = position
        let text = try readString()
        guard let date = Timestamp.parse(text) else {
            throw MessageJSONError(message: "\(text.debugDescription) is not an ISO 8601 timestamp", offset: start)
        }
        return date
    }

    /// Skips any value (checking its syntax).
    mutating func skipValue(depth: Int = 0) throws(MessageJSONError) {
        guard depth < 512 else { throw error("nested too deeply") }
        skipWhitespace()
        switch peekByte {
        case .quote: _ = try readString()
        case .openBrace:
            try readObject { reader, _ throws(MessageJSONError) in try reader.skipValue(depth: depth + 1) }
        case .openBracket:
            try readArray { reader throws(MessageJSONError) in try reader.skipValue(depth: depth + 1) }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: _ = try scanNumber()
        }
    }

    // MARK: Pieces

    private var peekByte: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard peekByte == byte else { return false }
        position += 1
        return true
    }

    private mutating func expect(_ byte: UInt8, _ message: String) throws(MessageJSONError) {
        guard consume(byte) else { throw error(position < bytes.count ? message : "unexpected end of the document") }
    }

    private mutating func literal(_ word: StaticString) throws(MessageJSONError) {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count,
              memcmp(bytes.baseAddress! + position, word.utf8Start, count) == 0 else {
            throw error("expected \(word)")
        }
        position += count
    }

    private struct Number {
        var start: Int
        var end: Int
        var negative: Bool
    }

    private func text(of number: Number) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[number.start..<number.end]), as: UTF8.self)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func scanNumber() throws(MessageJSONError) -> Number {
        skipWhitespace()
        let start = position
        let negative = peekByte == .minus
        if negative { position += 1 }
        guard let first = peekByte, first.isDigit else { throw error(position < bytes.count ? "expected a value" : "unexpected end of the document") }
        position += 1
        if first == UInt8(ascii: "0") {
            if let next = peekByte, next.isDigit { throw error("leading zero in a number") }
        } else {
            skipDigits()
        }
        if peekByte == UInt8(ascii: ".") {
            position += 1
            guard let next = peekByte, next.isDigit else { throw error("expected a digit after '.'") }
            skipDigits()
        }
        if peekByte == UInt8(ascii: "e") || peekByte == UInt8(ascii: "E") {
            position += 1
            if peekByte == .plus || peekByte == .minus { position += 1 }
            guard let next = peekByte, next.isDigit else { throw error("expected a digit in the exponent") }
            skipDigits()
        }
        return Number(start: start, end: position, negative: negative)
    }

    private func hasNonZeroDigit(_ number: Number) -> Bool {
        var index = number.start
        while index < number.end, bytes[index] != UInt8(ascii: "e"), bytes[index] != UInt8(ascii: "E") {
            if bytes[index] >= UInt8(ascii: "1") && bytes[index] <= UInt8(ascii: "9") { return true }
            index += 1
        }
        return false
    }

    private mutating func skipDigits() {
        while let byte = peekByte, byte.isDigit { position += 1 }
    }

    private func readDouble(_ number: Number) throws(MessageJSONError) -> Double {
        let text = text(of: number)
        // Out of Double's range either way (1e400, or 1e-400 rounding to zero) is an error, as for JSONDecoder.
        guard let value = Double(text), value.isFinite, value != 0 || !hasNonZeroDigit(number) else {
            throw MessageJSONError(message: "\(text) is out of range", offset: number.start)
        }
        return value
    }

    /// The number's absolute value when it is an integer that fits in 64 bits: all its digits as
    /// one integer, scaled by the exponent less the fraction's length, exactly.
    private func exactMagnitude(_ number: Number) -> UInt64? {
        var mantissa: UInt64 = 0
        var fractionDigits = 0
        var index = number.start + (number.negative ? 1 : 0)
        var inFraction = false
        while index < number.end, bytes[index] != UInt8(ascii: "e"), bytes[index] != UInt8(ascii: "E") {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: ".") { inFraction = true; continue }
            let (times10, overflow1) = mantissa.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte &- UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            mantissa = sum
            if inFraction { fractionDigits += 1 }
        }
        var exponent = 0
        if index < number.end {
            index += 1
            var negativeExponent = false
            if bytes[index] == .minus || bytes[index] == .plus { negativeExponent = bytes[index] == .minus; index += 1 }
            while index < number.end {
                exponent = min(exponent * 10 + Int(bytes[index] &- UInt8(ascii: "0")), 10_000)
                index += 1
            }
            if negativeExponent { exponent = -exponent }
        }
        var scale = exponent - fractionDigits
        if mantissa == 0 { return 0 }
        while scale < 0 {
            guard mantissa % 10 == 0 else { return nil }
            mantissa /= 10
            scale += 1
        }
        while scale > 0 {
            let (times10, overflow) = mantissa.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            mantissa = times10
            scale -= 1
        }
        return mantissa
    }

    /// The slow path of `readString`: from `start`, decoding escapes.
    private mutating func readEscapedString(from start: Int) throws(MessageJSONError) -> String {
        var utf8: [UInt8] = []
        utf8.reserveCapacity(position - start + 16)
        utf8.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case .quote:
                position += 1
                guard let string = String(validating: utf8, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                return string
            case .backslash:
                position += 1
                guard let escape = peekByte else { break }
                position += 1
                switch escape {
                case .quote, .backslash, UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = UInt32(try readHex4())
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low one.
                        guard position + 2 <= bytes.count, bytes[position] == .backslash, bytes[position + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate in a string")
                        }
                        position += 2
                        let low = UInt32(try readHex4())
                        guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate in a string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw error("unpaired surrogate in a string")
                    }
                    utf8.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(scalar)!)!)
                default:
                    position -= 1
                    throw error("invalid escape in a string")
                }
            default:
                if byte < 0x20 { throw error("control character in a string") }
                utf8.append(byte)
                position += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func readHex4() throws(MessageJSONError) -> UInt16 {
        guard position + 4 <= bytes.count else { throw error("unterminated \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }
}

extension UInt8 {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")

    var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
}
