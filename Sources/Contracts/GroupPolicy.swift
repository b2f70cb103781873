/// The RBAC matrix of DESIGN §5 in one place: command-api checks it before it commits a membership
/// change or accepts a command, the engine checks the todo rules against its authoritative state,
/// and the streamer checks reads. `role` is nil for a non-member.
public enum GroupCapability: Sendable, Equatable {
    case createGroup
    case addMember(as: GroupRole)
    case changeRoles
    /// Removing `target`; `isSelf` when the actor removes themself (leaving).
    case removeMember(target: GroupRole, isSelf: Bool)
    case deleteGroup
    case writeOwnTodo
    case writeOthersTodo
    /// Moving (status or position only) a todo someone else created that is assigned to the actor:
    /// work flows across the board by its assignee. Editing and deleting it stay `writeOthersTodo`.
    case moveTodoAssignedToSelf
    case read
    /// Downloading the whole group (its todos, members and history): owners and admins.
    case exportGroup
}

public enum GroupPolicy {
    public static func allows(_ role: GroupRole?, _ capability: GroupCapability) -> Bool {
        if case .createGroup = capability { return true }
        guard let role else { return false }
        switch capability {
        case .createGroup, .read, .writeOwnTodo, .moveTodoAssignedToSelf:
            return true
        case .addMember(let newRole):
            return newRole == .member ? role >= .admin : role == .owner
        case .changeRoles, .deleteGroup:
            return role == .owner
        case .removeMember(let target, let isSelf):
            if isSelf { return true }
            switch role {
            case .owner: return true
            case .admin: return target == .member
            case .member: return false
            }
        case .writeOthersTodo, .exportGroup:
            return role >= .admin
        }
    }
}
