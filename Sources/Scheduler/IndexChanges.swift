import Contracts
import Foundation

/// What a batch of events changes in the scheduler's tables, worked out without I/O (unit-tested).
///
/// Every change carries the group version of its event, and the tables keep the version of the
/// last change to each row: an older event delivered again (a redelivery, or two replicas' batches
/// committing out of order) never undoes a newer one.
struct IndexChanges: Equatable {
    struct ReminderKey: Hashable {
        let groupID: String
        let todoID: String
        let userID: String
    }

    /// A reminder's latest state in the batch: set (with its instant) or ended (`fireAt` nil).
    struct ReminderRow: Equatable {
        let key: ReminderKey
        let version: Int64
        let fireAt: Date?
        /// The local time and zone it was set for (nil once it ended).
        var remindAt: String? = nil
        var timezone: String? = nil
        let actorName: String
    }

    /// Every live reminder of a todo ends (deleted, or moved to done) as of `version`.
    struct TodoEnd: Hashable {
        struct Key: Hashable {
            let groupID: String
            let todoID: String
        }

        let groupID: String
        let todoID: String
        let version: Int64
    }

    /// Every reminder of a member in a group ends (they left); `userID` nil: of everyone (the group
    /// was deleted).
    struct MemberEnd: Hashable {
        struct Key: Hashable {
            let groupID: String
            let userID: String?
        }

        let groupID: String
        let userID: String?
        let version: Int64
    }

    /// A todo event, for the assignee check (`AssigneeChanges`).
    struct TodoAssignment: Equatable {
        let groupID: String
        let todoID: String
        let version: Int64
        /// nil when the todo was deleted or has no assignee.
        let assignee: String?
        let actorName: String
        let title: String
        let eventID: String
        let occurredAt: Date
        /// Whether a new assignee hears of it (not for history read at the first start).
        var notify = true
    }

    /// The engine refused a `fire-reminder` (`code`): the reminder it was for is gone
    /// (`no_reminder`), or not due yet by the engine's clock.
    struct FiringRefusal: Equatable {
        let key: ReminderKey
        let commandID: String
        let code: String
    }

    /// A notification for a known user id (a fired reminder's).
    struct Notification: Equatable {
        let userID: String
        let groupID: String
        let todoID: String
        let title: String
        let eventID: String
        let late: Bool
        let createdAt: Date
    }

    private(set) var reminders: [ReminderKey: ReminderRow] = [:]
    private var todoEndVersions: [TodoEnd.Key: Int64] = [:]
    private var memberEndVersions: [MemberEnd.Key: Int64] = [:]
    private(set) var assignments: [TodoAssignment] = []
    private(set) var fired: [Notification] = []
    private(set) var refusals: [FiringRefusal] = []

    /// One end per todo and per member, the newest, in key order (so two replicas' transactions
    /// lock rows in the same order).
    var todoEnds: [TodoEnd] {
        todoEndVersions.map { TodoEnd(groupID: $0.key.groupID, todoID: $0.key.todoID, version: $0.value) }
            .sorted { ($0.groupID, $0.todoID) < ($1.groupID, $1.todoID) }
    }

    var memberEnds: [MemberEnd] {
        memberEndVersions.map { MemberEnd(groupID: $0.key.groupID, userID: $0.key.userID, version: $0.value) }
            .sorted { ($0.groupID, $0.userID ?? "") < ($1.groupID, $1.userID ?? "") }
    }

    /// The reminders' new states in key order.
    var reminderRows: [ReminderRow] {
        reminders.values.sorted { ($0.key.groupID, $0.key.todoID, $0.key.userID) < ($1.key.groupID, $1.key.todoID, $1.key.userID) }
    }

    init(_ events: some Sequence<TodoEvent>) {
        for event in events { add(event) }
    }

    var isEmpty: Bool {
        reminders.isEmpty && todoEndVersions.isEmpty && memberEndVersions.isEmpty && assignments.isEmpty && fired.isEmpty && refusals.isEmpty
    }

    /// Drops the notifications of events from before `since` (the scheduler's first start: the
    /// history it reads then is not news), keeping every change to the index.
    mutating func notifyOnly(since: Date) {
        fired.removeAll { $0.createdAt < since }
        for index in assignments.indices where assignments[index].occurredAt < since { assignments[index].notify = false }
    }

    private mutating func add(_ event: TodoEvent) {
        let version = event.groupVersion
        switch event.eventType {
        case .reminderSet, .reminderCleared, .reminderFired:
            guard let todoID = event.todoID else { return }
            let key = ReminderKey(groupID: event.groupID, todoID: todoID, userID: event.actorUserID)
            let fireAt = event.eventType == .reminderSet ? event.fireAt : nil
            if event.eventType == .reminderSet && fireAt == nil { return }
            if event.eventType == .reminderFired {
                fired.append(Notification(userID: event.actorUserID, groupID: event.groupID, todoID: todoID,
                                          title: event.title ?? "", eventID: event.eventID, late: event.late == true,
                                          createdAt: event.occurredAt))
            }
            if let known = reminders[key], known.version >= version { break }
            reminders[key] = ReminderRow(key: key, version: version, fireAt: fireAt, remindAt: fireAt == nil ? nil : event.remindAt,
                                         timezone: fireAt == nil ? nil : event.timezone, actorName: event.actorName)
        case .todoCreated, .todoUpdated, .todoMoved, .todoDeleted, .todoRestored:
            guard let todoID = event.todoID else { return }
            // Deleting a todo or moving it to done cancels its reminders (the engine drops them).
            if event.eventType == .todoDeleted || event.status == .done {
                let key = TodoEnd.Key(groupID: event.groupID, todoID: todoID)
                todoEndVersions[key] = max(todoEndVersions[key] ?? version, version)
            }
            // Deleting and restoring leave the assignee as it was: neither is an assignment.
            guard event.eventType != .todoDeleted && event.eventType != .todoRestored else { return }
            assignments.append(TodoAssignment(
                groupID: event.groupID, todoID: todoID, version: version, assignee: event.assignee,
                actorName: event.actorName, title: event.title ?? "", eventID: event.eventID, occurredAt: event.occurredAt))
        case .memberRemoved:
            guard let member = event.memberUserID else { return }
            let key = MemberEnd.Key(groupID: event.groupID, userID: member)
            memberEndVersions[key] = max(memberEndVersions[key] ?? version, version)
        case .groupDeleted:
            let key = MemberEnd.Key(groupID: event.groupID, userID: nil)
            memberEndVersions[key] = max(memberEndVersions[key] ?? version, version)
        case .commandRejected:
            // The engine refused one of the scheduler's own firings (its id says so).
            guard event.commandID.hasPrefix(ReminderFiring.prefix), let todoID = event.todoID else { return }
            refusals.append(FiringRefusal(key: ReminderKey(groupID: event.groupID, todoID: todoID, userID: event.actorUserID),
                                          commandID: event.commandID, code: event.code ?? ""))
        case .memberAdded, .memberRoleChanged:
            break
        }
    }
}

/// The `assigned` notifications of a batch's todo events, given what each todo's assignee was
/// (`known`: the stored assignee and the version it was stored at). A notification goes to a new,
/// non-empty assignee whom someone else named; the result also holds each changed todo's new
/// assignee, to store.
struct AssigneeChanges: Equatable {
    struct Stored: Equatable {
        var assignee: String?
        var version: Int64
    }

    struct TodoKey: Hashable {
        let groupID: String
        let todoID: String
    }

    /// Notifications to the assignee (a username), in event order.
    private(set) var notifications: [IndexChanges.TodoAssignment] = []
    /// The new stored state of each todo whose assignee changed.
    private(set) var updates: [TodoKey: Stored] = [:]

    init(_ assignments: [IndexChanges.TodoAssignment], known: [TodoKey: Stored]) {
        var current = known
        for assignment in assignments {
            let key = TodoKey(groupID: assignment.groupID, todoID: assignment.todoID)
            let before = current[key]
            if let before, before.version >= assignment.version { continue }
            guard assignment.assignee != before?.assignee else { continue }
            let stored = Stored(assignee: assignment.assignee, version: assignment.version)
            current[key] = stored
            updates[key] = stored
            if let assignee = assignment.assignee, assignee != assignment.actorName, assignment.notify { notifications.append(assignment) }
        }
    }
}
