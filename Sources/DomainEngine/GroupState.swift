import Contracts
import Foundation

/// What the engine knows of one group: enough to decide any command. Rebuilt from the group's own
/// events (`evolve` over them in order), then kept up to date as the engine emits new ones.
public struct GroupState: Sendable, Equatable {
    public let groupID: String
    /// `group_version` of the last event (0: no event yet).
    public var version: Int64 = 0
    /// EVENTS stream sequence of the last event on this group's subject (0: none), for
    /// `Nats-Expected-Last-Subject-Sequence`.
    public var lastSequence: UInt64 = 0
    /// COMMANDS sequence of the last command decided for this group (0: none): every command of
    /// the group at or below it has its outcome.
    public var lastCommandSequence: UInt64 = 0
    public var todos: [String: TodoState] = [:]
    /// user id → role, from `member.*` events.
    public var members: [String: GroupRole] = [:]
    /// Every command id that already has its outcome event: a redelivered or re-published command
    /// produces no second outcome.
    public var decidedCommands: Set<String> = []
    public var isDeleted = false
    /// Todos not deleted (kept by `Decider.apply`, for the per-group cap).
    public var liveTodos = 0
    /// The highest position a todo has taken in each column (kept by `Decider.apply`): a new card
    /// goes after it, found in O(1) instead of by a walk over every todo of the group.
    public var columnEnds: [TodoStatus: Double] = [:]

    public init(groupID: String) {
        self.groupID = groupID
    }
}

/// The engine's view of one todo: its full current snapshot, so every event can carry it.
public struct TodoState: Sendable, Equatable {
    public var todoID: String
    public var title: String
    public var notes: String
    public var status: TodoStatus
    public var position: Double
    public var dueDate: String?
    public var assignee: String?
    public var labels: [String]
    public var createdBy: String
    public var createdByName: String
    public var createdAt: Date
    /// 1 on create, +1 per change.
    public var version: Int64
    public var isDeleted: Bool
}

/// Why a command was rejected; `code` travels in `command.rejected` events.
public enum RejectionCode: String, Sendable, CaseIterable {
    case invalidCommand = "invalid_command"
    case notMember = "not_member"
    case forbidden = "forbidden"
    case todoExists = "todo_exists"
    case todoNotFound = "todo_not_found"
    case versionConflict = "version_conflict"
    case groupDeleted = "group_deleted"
    case unsupportedVersion = "unsupported_version"
    /// A cap of `GrowthLimits` (todos per group).
    case limitReached = "limit_reached"
}
