import Contracts
import DequeModule
import Foundation

/// What the engine knows of one group: enough to decide any command. Rebuilt from the group's own
/// events (`evolve` over them in order), then kept up to date as the engine emits new ones.
///
/// Nothing in it grows with the group's history beyond its live contents: the todos and members
/// themselves, and a bounded record of recent command ids.
public struct GroupState: Sendable, Equatable {
    public let groupID: String
    /// `group_version` of the last event (0: no event yet).
    public var version: Int64 = 0
    /// EVENTS stream sequence of the last message on this group's subject (0: none), for
    /// `Nats-Expected-Last-Subject-Sequence`.
    public var lastSequence: UInt64 = 0
    /// COMMANDS sequence of the last command decided for this group (0: none). The group's commands
    /// are decided in stream order, so a delivery at or below it is normally a redelivery; the
    /// exception (a lookup of the command log that missed a command) is told apart by
    /// `recentCommands` (see `CommandProcessor.hasOutcome`).
    public var lastCommandSequence: UInt64 = 0
    public var todos: [String: TodoState] = [:]
    /// user id → role, from `member.*` events.
    public var members: [String: GroupRole] = [:]
    /// The ids of the group's most recent commands with an outcome: a copy of a command published
    /// again under a new stream sequence produces no second outcome (see `RecentCommandIDs`).
    public var recentCommands = RecentCommandIDs()
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

/// The command ids of a group's last `capacity` outcomes, oldest first out.
///
/// A redelivered command is recognised by its stream sequence (`lastCommandSequence`, with this
/// record telling a command a lookup missed from one that was decided), and a copy
/// published again within the duplicate window never reaches the engine (JetStream drops it by its
/// `Nats-Msg-Id`). What is left is a copy published later, under a new sequence (an outbox relay
/// that was down, a replay by hand): this record catches those among the group's last 16,384
/// commands, so the engine's memory per group stays bounded however long the group lives.
public struct RecentCommandIDs: Sendable, Equatable {
    public static let defaultCapacity = 16_384
    public let capacity: Int
    private var order = Deque<String>()
    private var members = Set<String>()

    /// Whether the record may lack the id of a decided command: one was pushed out by a newer one,
    /// or an event message of the group could not be read when its state was built. Until then it
    /// holds every command the group has decided, so an id missing from it was not decided.
    public private(set) var mayBeIncomplete = false

    public init(capacity: Int = Self.defaultCapacity) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { order.count }

    public func contains(_ id: String) -> Bool { members.contains(id) }

    /// True only when the record is complete and `id` is not in it: the command has no outcome.
    public func provesUndecided(_ id: String) -> Bool { !mayBeIncomplete && !members.contains(id) }

    /// The group's events could not all be read: a missing id proves nothing from now on.
    public mutating func markIncomplete() { mayBeIncomplete = true }

    public mutating func insert(_ id: String) {
        guard members.insert(id).inserted else { return }
        order.append(id)
        if order.count > capacity, let oldest = order.popFirst() {
            members.remove(oldest)
            mayBeIncomplete = true
        }
    }

    /// Takes back the last `count` insertions (those of a run that was not stored). Ids that they
    /// pushed out stay out: the record is only ever smaller, never wrong.
    mutating func removeLast(_ count: Int) {
        for _ in 0..<min(count, order.count) {
            if let id = order.popLast() { members.remove(id) }
        }
    }
}

/// What a run of events applied to a state changed, so that the state can be put back as it was
/// when the run is not stored (a sequence conflict): restoring costs what the run touched, never a
/// reload of the group.
struct GroupStateRollback {
    private let version: Int64
    private let lastSequence: UInt64
    private let lastCommandSequence: UInt64
    private let isDeleted: Bool
    private let liveTodos: Int
    private let columnEnds: [TodoStatus: Double]
    private let recentCount: Int
    /// The first value each touched todo / member had (nil: absent).
    private var todos: [String: TodoState?] = [:]
    private var members: [String: GroupRole?] = [:]
    private var insertedIDs = 0

    init(_ state: GroupState) {
        version = state.version
        lastSequence = state.lastSequence
        lastCommandSequence = state.lastCommandSequence
        isDeleted = state.isDeleted
        liveTodos = state.liveTodos
        columnEnds = state.columnEnds
        recentCount = state.recentCommands.count
    }

    /// Called before `event` is applied to `state`.
    mutating func note(_ event: TodoEvent, before state: GroupState) {
        if !state.recentCommands.contains(event.commandID) { insertedIDs += 1 }
        if let todoID = event.todoID, todos[todoID] == nil { todos[todoID] = .some(state.todos[todoID]) }
        if let member = event.memberUserID, members[member] == nil { members[member] = .some(state.members[member]) }
        // A member's removal drops their reminders from every todo: keep those todos as they were.
        if event.eventType == .memberRemoved, let member = event.memberUserID {
            for (id, todo) in state.todos where todo.reminders[member] != nil && todos[id] == nil { todos[id] = .some(todo) }
        }
    }

    func restore(_ state: inout GroupState) {
        state.version = version
        state.lastSequence = lastSequence
        state.lastCommandSequence = lastCommandSequence
        state.isDeleted = isDeleted
        state.liveTodos = liveTodos
        state.columnEnds = columnEnds
        for (id, todo) in todos { state.todos[id] = todo }
        for (id, role) in members { state.members[id] = role }
        state.recentCommands.removeLast(insertedIDs)
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
    /// When it was deleted (nil while live): restorable until `Trash.retention` has passed.
    public var deletedAt: Date?
    /// Its reminders, by the id of the user each is for (DESIGN §9): one per user; gone when the
    /// todo is deleted or done.
    public var reminders: [String: Reminder] = [:]

    public init(todoID: String, title: String, notes: String, status: TodoStatus, position: Double, dueDate: String? = nil,
                assignee: String?, labels: [String], createdBy: String, createdByName: String, createdAt: Date, version: Int64,
                isDeleted: Bool, deletedAt: Date? = nil) {
        self.todoID = todoID
        self.title = title
        self.notes = notes
        self.status = status
        self.position = position
        self.dueDate = dueDate
        self.assignee = assignee
        self.labels = labels
        self.createdBy = createdBy
        self.createdByName = createdByName
        self.createdAt = createdAt
        self.version = version
        self.isDeleted = isDeleted
        self.deletedAt = isDeleted ? deletedAt : nil
    }
}

/// A user's reminder on a todo: the local time asked for, its zone, and the instant it fires.
public struct Reminder: Sendable, Equatable {
    /// How far ahead a reminder may be: beyond it a timestamp could leave what the bus's codec
    /// writes (years after 9999).
    public static let horizon: TimeInterval = 10 * 365 * 86_400
    /// How early a `fire-reminder` may come (the scheduler's clock against the engine's).
    public static let clockSkew: TimeInterval = 5

    public var remindAt: String
    public var timezone: String
    public var fireAt: Date

    public init(remindAt: String, timezone: String, fireAt: Date) {
        self.remindAt = remindAt
        self.timezone = timezone
        self.fireAt = fireAt
    }
}

/// Why a command was rejected; `code` travels in `command.rejected` events.
public enum RejectionCode: String, Sendable, CaseIterable {
    case invalidCommand = "invalid_command"
    case notMember = "not_member"
    case forbidden = "forbidden"
    case todoExists = "todo_exists"
    case todoNotFound = "todo_not_found"
    /// `restore-todo` of a todo that is not in the trash.
    case notDeleted = "not_deleted"
    /// `clear-reminder` or `fire-reminder` of a reminder that is not set (for that time).
    case noReminder = "no_reminder"
    case versionConflict = "version_conflict"
    case groupDeleted = "group_deleted"
    case unsupportedVersion = "unsupported_version"
    /// A cap of `GrowthLimits` (todos per group).
    case limitReached = "limit_reached"
}
