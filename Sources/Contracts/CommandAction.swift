/// What a command asks for. Todo actions come from `POST /api/v1/command`; membership actions come
/// from command-api's outbox, so the engine orders them with the group's todo events.
public enum CommandAction: String, Codable, Sendable, CaseIterable {
    case createTodo = "create-todo"
    case updateTodo = "update-todo"
    case moveTodo = "move-todo"
    case deleteTodo = "delete-todo"
    case addMember = "add-member"
    case changeMemberRole = "change-member-role"
    case removeMember = "remove-member"
    case deleteGroup = "delete-group"

    /// Actions a client may send to `POST /api/v1/command`.
    public var isClientAction: Bool {
        switch self {
        case .createTodo, .updateTodo, .moveTodo, .deleteTodo: true
        default: false
        }
    }
}

/// The kinds of events the engine emits.
public enum EventType: String, Codable, Sendable, CaseIterable {
    case todoCreated = "todo.created"
    case todoUpdated = "todo.updated"
    case todoMoved = "todo.moved"
    case todoDeleted = "todo.deleted"
    case commandRejected = "command.rejected"
    case memberAdded = "member.added"
    case memberRoleChanged = "member.role_changed"
    case memberRemoved = "member.removed"
    case groupDeleted = "group.deleted"
}
