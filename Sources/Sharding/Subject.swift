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
    public init(parsing subject: String) throws(SubjectParseError) {
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        guard tokens.count == 5, tokens[0] == "app", tokens[3] == "group",
              let kind = SubjectKind(rawValue: String(tokens[1])),
              let shard = Int(tokens[2]), String(shard) == tokens[2], (0..<Shard.count).contains(shard)
        else { throw .malformed(subject) }
        let groupID: GroupID
        do { groupID = try GroupID(String(tokens[4])) } catch { throw .invalidGroupID(error) }
        guard groupID.shard == shard else {
            throw .shardMismatch(subject: subject, expected: groupID.shard, found: shard)
        }
        self.init(kind, groupID: groupID)
    }
}
