import Foundation

/// A Swift value sent to Postgres as a statement parameter (text format; nil is SQL NULL).
public protocol PostgresEncodable: Sendable {
    var postgresText: String? { get }
    /// Appends the value as one field of COPY's text format (escaped; nil is `\N`). The default
    /// escapes `postgresText`; the common types write their bytes directly.
    func writeCopyText(to buffer: inout [UInt8])
}

extension PostgresEncodable {
    public func writeCopyText(to buffer: inout [UInt8]) {
        appendCopyText(postgresText, to: &buffer)
    }
}

extension BinaryInteger where Self: PostgresEncodable {
    /// Digits and a sign never need escaping.
    public func writeCopyText(to buffer: inout [UInt8]) {
        buffer.append(contentsOf: String(self).utf8)
    }
}

/// A Swift value read from a column's text representation.
public protocol PostgresDecodable {
    init(postgresText: String) throws
}

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { self }
    public func writeCopyText(to buffer: inout [UInt8]) { appendCopyText(self, to: &buffer) }
    public init(postgresText: String) { self = postgresText }
}

extension Int: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public init(postgresText: String) throws { self = try parse(postgresText, Int.init) }
}

extension Int64: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public init(postgresText: String) throws { self = try parse(postgresText, Int64.init) }
}

extension Int32: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public init(postgresText: String) throws { self = try parse(postgresText, Int32.init) }
}

extension UInt64: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public init(postgresText: String) throws { self = try parse(postgresText, UInt64.init) }
}

extension Double: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return String(self)
    }
    public init(postgresText: String) throws {
        switch postgresText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default: self = try parse(postgresText, Double.init)
        }
    }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { self ? "t" : "f" }
    public init(postgresText: String) throws {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw PostgresError(kind: .decoding, message: "\(postgresText.debugDescription) is not a boolean", context: "decode Bool")
        }
    }
}

extension UUID: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { uuidString.lowercased() }
    public init(postgresText: String) throws {
        guard let uuid = UUID(uuidString: postgresText) else {
            throw PostgresError(kind: .decoding, message: "\(postgresText.debugDescription) is not a UUID", context: "decode UUID")
        }
        self = uuid
    }
}

/// Timestamps travel as ISO 8601 text with microseconds; every connection runs with TimeZone=UTC.
extension Date: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        writeCopyText(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `2026-11-21 19:42:13.123456+00` (no character needs escaping).
    public func writeCopyText(to buffer: inout [UInt8]) {
        let micros = Int64((timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = time_t(micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000)
        let fraction = Int(micros - Int64(seconds) * 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ count: Int, then separator: UInt8?) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                buffer.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest / divisor % 10))
                rest %= divisor
                divisor /= 10
            }
            if let separator { buffer.append(separator) }
        }
        let year = Int(parts.tm_year) + 1900
        if year < 0 || year > 9999 { buffer.append(contentsOf: String(year).utf8); buffer.append(UInt8(ascii: "-")) } else { digits(year, 4, then: UInt8(ascii: "-")) }
        digits(Int(parts.tm_mon) + 1, 2, then: UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2, then: UInt8(ascii: " "))
        digits(Int(parts.tm_hour), 2, then: UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2, then: UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2, then: UInt8(ascii: "."))
        digits(fraction, 6, then: nil)
        buffer.append(contentsOf: "+00".utf8)
    }

    /// Parses `2026-11-21 19:42:13.123456+00` (timestamptz, with TimeZone=UTC) and `2026-11-21` (date).
    public init(postgresText text: String) throws {
        let failure = PostgresError(kind: .decoding, message: "\(text.debugDescription) is not a timestamp", context: "decode Date")
        let utf8 = Array(text.utf8)
        func number(_ range: Range<Int>) throws -> Int {
            guard range.upperBound <= utf8.count else { throw failure }
            var value = 0
            for byte in utf8[range] {
                guard byte >= 48 && byte <= 57 else { throw failure }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        var components = DateComponents()
        components.timeZone = TimeZone(identifier: "UTC")
        components.year = try number(0..<4)
        components.month = try number(5..<7)
        components.day = try number(8..<10)
        var fraction = 0.0
        var offsetSeconds = 0
        if utf8.count > 10 {
            components.hour = try number(11..<13)
            components.minute = try number(14..<16)
            components.second = try number(17..<19)
            var index = 19
            if index < utf8.count && utf8[index] == UInt8(ascii: ".") {
                let start = index + 1
                index = start
                while index < utf8.count && utf8[index] >= 48 && utf8[index] <= 57 { index += 1 }
                fraction = Double("0." + String(decoding: utf8[start..<index], as: UTF8.self)) ?? 0
            }
            if index < utf8.count {
                let sign = utf8[index] == UInt8(ascii: "-") ? -1 : 1
                let hours = try number(index + 1..<index + 3)
                let minutes = utf8.count >= index + 6 ? try number(index + 4..<index + 6) : 0
                offsetSeconds = sign * (hours * 3600 + minutes * 60)
            }
        }
        guard let date = Calendar(identifier: .gregorian).date(from: components) else { throw failure }
        self = date.addingTimeInterval(fraction - Double(offsetSeconds))
    }
}

/// `bytea`, sent and read in hex format (`\x0a1b…`).
extension Data: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        bytes.reserveCapacity(2 + count * 2)
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public init(postgresText text: String) throws {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            throw PostgresError(kind: .decoding, message: "bytea is not in hex format", context: "decode Data")
        }
        func nibble(_ c: UInt8) throws -> UInt8 {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: throw PostgresError(kind: .decoding, message: "bad hex digit in bytea", context: "decode Data")
            }
        }
        var data = Data(capacity: (utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            data.append(try nibble(utf8[index]) << 4 | nibble(utf8[index + 1]))
            index += 2
        }
        self = data
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self?.postgresText }
    public func writeCopyText(to buffer: inout [UInt8]) {
        if let self { self.writeCopyText(to: &buffer) } else { appendCopyText(nil, to: &buffer) }
    }
}

/// `text[]` and other one-dimensional arrays, as array literals (`{"a","b"}`).
extension Array: PostgresEncodable where Element: PostgresEncodable {
    public var postgresText: String? {
        var literal = "{"
        for (index, element) in enumerated() {
            if index > 0 { literal += "," }
            guard let text = element.postgresText else {
                literal += "NULL"
                continue
            }
            literal += "\""
            for character in text {
                if character == "\"" || character == "\\" { literal += "\\" }
                literal.append(character)
            }
            literal += "\""
        }
        return literal + "}"
    }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
    /// Parses a one-dimensional array literal. NULL elements are not supported (use a non-null column).
    public init(postgresText text: String) throws {
        let failure = PostgresError(kind: .decoding, message: "\(text.debugDescription) is not an array", context: "decode Array")
        var characters = text.makeIterator()
        guard characters.next() == "{" else { throw failure }
        var elements: [Element] = []
        var current = ""
        var quoted = false
        var inQuotes = false
        var finished = false
        func flush() throws {
            if !quoted && current == "NULL" { throw failure }
            elements.append(try Element(postgresText: current))
            current = ""
            quoted = false
        }
        while let character = characters.next() {
            if inQuotes {
                switch character {
                case "\\": if let next = characters.next() { current.append(next) }
                case "\"": inQuotes = false
                default: current.append(character)
                }
                continue
            }
            switch character {
            case "\"": inQuotes = true; quoted = true
            case ",": try flush()
            case "}":
                if quoted || !current.isEmpty { try flush() }
                finished = true
            default: current.append(character)
            }
        }
        guard finished else { throw failure }
        self = elements
    }
}

private func parse<T>(_ text: String, _ make: (String) -> T?) throws -> T {
    guard let value = make(text) else {
        throw PostgresError(kind: .decoding, message: "\(text.debugDescription) is not a \(T.self)", context: "decode \(T.self)")
    }
    return value
}
