import Foundation

/// What a command asks for. Todo actions come from `POST /api/v1/command`; membership actions come
/// from command-api's outbox, so the engine orders them with the group's todo events.
public enum CommandAction: String, Codable, Sendable, CaseIterable {
    case createTodo = "create-todo"
    case updateTodo = "update-todo"
    case moveTodo = "move-todo"
    case deleteTodo = "delete-todo"
    /// Brings a deleted todo back from the group's trash (within `Trash.retention`).
    case restoreTodo = "restore-todo"
    /// A reminder for the actor on a todo, at a local time (DESIGN §9): one per (todo, user).
    case setReminder = "set-reminder"
    case clearReminder = "clear-reminder"
    /// From the scheduler at a reminder's `fire_at`, on behalf of its user; the engine turns it into
    /// `reminder.fired` only if that reminder is still set for that time.
    case fireReminder = "fire-reminder"
    case addMember = "add-member"
    case changeMemberRole = "change-member-role"
    case removeMember = "remove-member"
    case deleteGroup = "delete-group"

    /// Actions a client may send to `POST /api/v1/command`.
    public var isClientAction: Bool {
        switch self {
        case .createTodo, .updateTodo, .moveTodo, .deleteTodo, .restoreTodo, .setReminder, .clearReminder: true
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
    case todoRestored = "todo.restored"
    case reminderSet = "reminder.set"
    case reminderCleared = "reminder.cleared"
    case reminderFired = "reminder.fired"
    case commandRejected = "command.rejected"
    case memberAdded = "member.added"
    case memberRoleChanged = "member.role_changed"
    case memberRemoved = "member.removed"
    case groupDeleted = "group.deleted"
}

/// Deleted todos stay in their group's trash, restorable, for `retention`; then the sink purges
/// their rows (their events stay in the history) and the engine refuses to restore them.
public enum Trash {
    public static let retention: TimeInterval = 30 * 24 * 3600
}
