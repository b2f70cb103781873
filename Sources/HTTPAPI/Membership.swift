import Contracts
import Foundation
import Postgres

/// What a user is in a group, as command-api and the streamer check it on every request.
public enum MembershipCheck: Sendable, Equatable {
    case unknownGroup
    case notMember
    case member(GroupRole)
}

extension PostgresConnection {
    /// The user's role in a live (not deleted) group.
    public func membership(of user: UUID, in group: String) throws -> MembershipCheck {
        let rows = try queryPrepared("""
            SELECT m.role FROM groups g LEFT JOIN group_members m ON m.group_id = g.group_id AND m.user_id = $2
            WHERE g.group_id = $1 AND g.deleted_at IS NULL
            """, group, user)
        guard let row = rows.first else { return .unknownGroup }
        guard let role = try row.decode(String?.self, "role").flatMap(GroupRole.init(rawValue:)) else { return .notMember }
        return .member(role)
    }
}

extension MembershipCheck {
    /// The role, or the 404/403 a request gets.
    public func requireMember(_ group: String) throws -> GroupRole {
        switch self {
        case .unknownGroup: throw APIError.notFound("group \(group) does not exist")
        case .notMember: throw APIError.forbidden("you are not a member of this group")
        case .member(let role): return role
        }
    }
}
