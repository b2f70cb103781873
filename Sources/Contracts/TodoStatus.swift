/// The three columns of a group's board.
public enum TodoStatus: String, Codable, Sendable, CaseIterable {
    case todo
    case inProgress = "in_progress"
    case done
}

/// A member's role in a group (DESIGN §5).
public enum GroupRole: String, Codable, Sendable, CaseIterable, Comparable {
    case member
    case admin
    case owner

    private var rank: Int {
        switch self {
        case .member: 0
        case .admin: 1
        case .owner: 2
        }
    }

    public static func < (lhs: GroupRole, rhs: GroupRole) -> Bool { lhs.rank < rhs.rank }
}
