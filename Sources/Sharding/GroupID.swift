/// Why a string cannot be used as a group id inside a NATS subject.
public enum GroupIDError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case tooLong(bytes: Int)
    case forbiddenCharacter(Character)

    public var description: String {
        switch self {
        case .empty: "group id is empty"
        case .tooLong(let bytes): "group id is \(bytes) bytes long; at most \(GroupID.maxBytes) are allowed"
        case .forbiddenCharacter(let character): "group id contains the forbidden character \(character.debugDescription)"
        }
    }
}

/// A group id that is known to be one valid NATS subject token.
public struct GroupID: Hashable, Sendable, CustomStringConvertible {
    public static let maxBytes = 128

    public let rawValue: String

    /// Validates `rawValue`: non-empty, at most 128 UTF-8 bytes, and none of `.`, `*`, `>`,
    /// whitespace or control characters.
    public init(_ rawValue: String) throws(GroupIDError) {
        if rawValue.isEmpty { throw .empty }
        let length = rawValue.utf8.count
        if length > Self.maxBytes { throw .tooLong(bytes: length) }
        // Group ids are nearly always ASCII (UUIDs): checked byte by byte without Unicode tables.
        var ascii = true
        for byte in rawValue.utf8 {
            guard byte < 0x80 else { ascii = false; break }
            if byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "*") || byte == UInt8(ascii: ">") {
                throw .forbiddenCharacter(Character(Unicode.Scalar(byte)))
            }
        }
        if !ascii {
            for scalar in rawValue.unicodeScalars where Self.isForbidden(scalar) {
                throw .forbiddenCharacter(Character(scalar))
            }
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    /// The shard this group's subjects live on.
    public var shard: Int { Shard.of(self) }

    private static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case ".", "*", ">": return true
        default:
            return scalar.properties.isWhitespace
                || scalar.properties.generalCategory == .control
                || scalar.properties.generalCategory == .format && scalar.value == 0xFEFF
        }
    }
}
