/// The two families of group subjects: `app.command.<shard>.group.<gid>` and `app.event.<shard>.group.<gid>`.
public enum SubjectKind: String, Sendable, CaseIterable {
    case command
    case event

    /// The stream that captures this kind of subject.
    public var streamName: String {
        switch self {
        case .command: "COMMANDS"
        case .event: "EVENTS"
        }
    }

    /// The wildcard that captures every subject of this kind (`app.command.>`).
    public var wildcard: String { "app.\(rawValue).>" }
}

public enum SubjectParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case shardMismatch(subject: String, expected: Int, found: Int)
    case invalidGroupID(GroupIDError)

    public var description: String {
        switch self {
        case .malformed(let subject): "\(subject.debugDescription) is not app.<command|event>.<shard>.group.<group_id>"
        case .shardMismatch(let subject, let expected, let found):
            "\(subject.debugDescription) names shard \(found) but its group belongs to shard \(expected)"
        case .invalidGroupID(let error): error.description
        }
    }
}

/// A parsed or built group subject.
public struct GroupSubject: Hashable, Sendable, CustomStringConvertible {
    public let kind: SubjectKind
    public let groupID: GroupID
    public var shard: Int { groupID.shard }

    public init(_ kind: SubjectKind, groupID: GroupID) {
        self.kind = kind
        self.groupID = groupID
    }

    public static func command(_ groupID: GroupID) -> GroupSubject { .init(.command, groupID: groupID) }
    public static func event(_ groupID: GroupID) -> GroupSubject { .init(.event, groupID: groupID) }

    /// `app.<kind>.<shard>.group.<group_id>`
    public var description: String { "app.\(kind.rawValue).\(shard).group.\(groupID.rawValue)" }
    public var subject: String { description }

    /// Parses a subject, checking that the shard token is the group's real shard.
    ///
    /// One pass over the bytes (the engine parses every command's subject; splitting it into
    /// substrings and strings was 4% of the engine's CPU).
    public init(parsing subject: String) throws(SubjectParseError) {
        var text = subject
        guard let (kind, shard, rawGroupID) = text.withUTF8(Self.tokens) else { throw .malformed(subject) }
        let groupID: GroupID
        do { groupID = try GroupID(rawGroupID) } catch { throw .invalidGroupID(error) }
        guard groupID.shard == shard else {
            throw .shardMismatch(subject: subject, expected: groupID.shard, found: shard)
        }
        self.init(kind, groupID: groupID)
    }

    private static let maxShardDigits = String(Shard.count - 1).utf8.count

    /// `app.<kind>.<shard>.group.<rest>` with a known kind and a shard written as `String(shard)`
    /// writes it, in range; nil for anything else.
    private static func tokens(_ bytes: UnsafeBufferPointer<UInt8>) -> (SubjectKind, Int, String)? {
        let dot = UInt8(ascii: ".")
        var dots: [Int] = []
        dots.reserveCapacity(4)
        for index in bytes.indices where bytes[index] == dot {
            guard dots.count < 4 else { return nil }
            dots.append(index)
        }
        guard dots.count == 4 else { return nil }
        func token(_ number: Int) -> UnsafeBufferPointer<UInt8> {
            let start = number == 0 ? 0 : dots[number - 1] + 1
            let end = number == 4 ? bytes.count : dots[number]
            return UnsafeBufferPointer(rebasing: bytes[start..<end])
        }
        guard token(0).elementsEqual("app".utf8), token(3).elementsEqual("group".utf8) else { return nil }
        let kindToken = token(1)
        guard let kind = SubjectKind.allCases.first(where: { kindToken.elementsEqual($0.rawValue.utf8) }) else { return nil }
        // Decimal without sign or leading zeros (what `String(shard)` writes), below `Shard.count`.
        let digits = token(2)
        guard !digits.isEmpty, digits.count <= Self.maxShardDigits,
              digits.count == 1 || digits[0] != UInt8(ascii: "0") else { return nil }
        var shard = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            shard = shard * 10 + Int(digit - UInt8(ascii: "0"))
        }
        guard shard < Shard.count else { return nil }
        return (kind, shard, String(decoding: token(4), as: UTF8.self))
    }
}

/// A user's notification subject, `app.notify.<shard>.user.<user_id>` (DESIGN §9): the shard of
/// the user id, as a group's is of the group id. The NOTIFY stream keeps them.
public struct UserSubject: Hashable, Sendable, CustomStringConvertible {
    public static let stream = "NOTIFY"
    public static let wildcard = "app.notify.>"
    public let userID: String
    public var shard: Int { Int(CRC32.checksum(userID) % UInt32(Shard.count)) }

    /// Throws unless the id is one subject token (the same rule as a group id).
    public init(userID: String) throws(GroupIDError) {
        _ = try GroupID(userID)
        self.userID = userID
    }

    public var description: String { "app.notify.\(shard).user.\(userID)" }
    public var subject: String { description }

    /// The user id of a notification subject, or nil for any other subject.
    public static func userID(of subject: String) -> String? {
        let parts = subject.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "app", parts[1] == "notify", parts[3] == "user",
              let user = try? UserSubject(userID: String(parts[4])), String(user.shard) == parts[2] else { return nil }
        return user.userID
    }
}
