import Foundation

/// The rules every piece of user text follows before it is accepted anywhere (DESIGN §3, §5):
/// command-api applies them to what clients send, and the engine applies them again to every
/// command it decides, so no event it emits can carry text Postgres or a browser cannot take.
///
/// 1. In a multi-line field, CR LF and a lone CR become LF (what a textarea sends varies by
///    platform; what is stored does not).
/// 2. No control characters (U+0000–U+001F, U+007F–U+009F), except LF and tab in a multi-line
///    field. (Other code points are content: format characters, separators, noncharacters,
///    private use — Postgres and the browser take them all.)
/// 3. The text is put in Unicode Normalization Form C, so "é" typed as one code point or as "e"
///    and a combining accent is the same title, the same label, the same length.
/// 4. Length limits hold in characters and in UTF-8 bytes, measured after normalization and
///    before any trimming. A character is a Unicode code point — what JSON Schema's `maxLength`,
///    Postgres' `length()` and the OpenAPI document count — so "a" followed by 150 combining
///    accents is 150 characters once composed ("á" and 149 accents), not one.
public struct TextRule: Sendable, Equatable {
    public let maxCharacters: Int
    public let maxBytes: Int
    public let multiLine: Bool

    public init(maxCharacters: Int, maxBytes: Int, multiLine: Bool = false) {
        self.maxCharacters = maxCharacters
        self.maxBytes = maxBytes
        self.multiLine = multiLine
    }

    /// Why a text breaks a rule, without echoing the text (it may not be printable).
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        case controlCharacter(UInt32)
        case tooLong(maxCharacters: Int)
        case tooManyBytes(maxBytes: Int)

        public var description: String {
            switch self {
            case .controlCharacter(let value): "must not contain control characters (found U+\(hex(value)))"
            case .tooLong(let max): "must be at most \(max) characters"
            case .tooManyBytes(let max): "must be at most \(max) bytes in UTF-8"
            }
        }

        private func hex(_ value: UInt32) -> String {
            let digits = String(value, radix: 16, uppercase: true)
            return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        }
    }

    /// The text as it is to be stored (line breaks unified, NFC), or why it is refused.
    public func normalize(_ raw: String) throws(Problem) -> String {
        var text = raw
        if multiLine, text.utf8.contains(0x0D) {
            text = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        }
        var ascii = true
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if value < 0x80 {
                if value < 0x20 || value == 0x7F {
                    guard multiLine, value == 0x0A || value == 0x09 else { throw .controlCharacter(value) }
                }
                continue
            }
            ascii = false
            if value <= 0x9F { throw .controlCharacter(value) }
        }
        // Cheap bounds first: a text over the byte limit by far is refused before normalising it.
        if text.utf8.count > maxBytes * 4 { throw .tooManyBytes(maxBytes: maxBytes) }
        if !ascii { text = text.precomposedStringWithCanonicalMapping }
        if text.utf8.count > maxBytes { throw .tooManyBytes(maxBytes: maxBytes) }
        if !ascii || text.utf8.count > maxCharacters, text.unicodeScalars.count > maxCharacters {
            throw .tooLong(maxCharacters: maxCharacters)
        }
        return text
    }

    /// Why `text` is not already in its stored form (what the engine requires of a command), or
    /// nil when it is.
    public func storedFormProblem(_ text: String) -> String? {
        do {
            // By scalars: `==` on String compares canonical equivalence, which NFC never changes.
            return try normalize(text).unicodeScalars.elementsEqual(text.unicodeScalars)
                ? nil : "is not in its normalized form (NFC, LF line breaks)"
        } catch {
            return error.description
        }
    }

    /// Whether `text` is already in its stored form.
    public func accepts(_ text: String) -> Bool {
        storedFormProblem(text) == nil
    }
}

/// The limits of every text field, in one place: command-api, the engine and the OpenAPI
/// document use these values.
public enum TextRules {
    public static let title = TextRule(maxCharacters: 200, maxBytes: 800)
    public static let notes = TextRule(maxCharacters: 4000, maxBytes: 16000, multiLine: true)
    public static let label = TextRule(maxCharacters: 32, maxBytes: 128)
    public static let groupName = TextRule(maxCharacters: 100, maxBytes: 400)
    /// Passwords are only hashed (SHA-256 first, so every byte counts); NFC makes the same
    /// password typed on two keyboards the same.
    public static let password = TextRule(maxCharacters: 128, maxBytes: 512)
    public static let maxLabelsPerTodo = 10

    /// Ids (groups, todos, commands, users): 1–128 ASCII letters, digits, `_` and `-` (they are
    /// NATS subject tokens, HTML ids and JSON keys).
    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2D
        }
    }

    /// Usernames: 3–32 of `[a-z0-9_.-]` (input is trimmed of spaces and tabs and lower-cased first:
    /// `Username.normalize`).
    public static func isValidUsername(_ name: String) -> Bool {
        (3...32).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2E || byte == 0x2D
        }
    }

    /// `YYYY-MM-DD` naming a real calendar day (years 1–9999, which Postgres' `date` takes).
    /// Days since 1970-01-01 of a valid `YYYY-MM-DD` (proleptic Gregorian), nil for anything else.
    public static func dayNumber(ofISODate text: String) -> Int? {
        guard isISODate(text) else { return nil }
        let parts = text.split(separator: "-").compactMap { Int64($0) }
        return Int(Timestamp.days(fromCivil: parts[0], parts[1], parts[2]))
    }

    public static func isISODate(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == 0x2D, bytes[7] == 0x2D else { return false }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              (1...9999).contains(year), (1...12).contains(month), day >= 1 else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return day <= days
    }
}
