import Contracts
import Foundation
import Sharding

/// The engine's decision logic, free of I/O: `decide` turns a command and the group's state into
/// exactly one outcome event (or says the command was already decided); `evolve` folds an event
/// into the state. The effectful shell (`CommandProcessor`) loads state, publishes, acknowledges.
public enum Decider {
    public enum Decision: Sendable, Equatable {
        /// The outcome to publish (a change, or `command.rejected`).
        case emit(TodoEvent)
        /// The command already has its outcome event; publish nothing, just acknowledge.
        case alreadyDecided
    }

    /// Decides `command` against `state`. The event gets `group_version = state.version + 1`.
    public static func decide(_ state: GroupState, _ command: TodoCommand, now: Date, limits: GrowthLimits = GrowthLimits()) -> Decision {
        if state.recentCommands.contains(command.commandID) { return .alreadyDecided }
        var event = TodoEvent(
            eventID: EventID.derive(fromCommandID: command.commandID), commandID: command.commandID,
            eventType: .commandRejected, groupID: state.groupID, todoID: command.todoID,
            actorUserID: command.actorUserID, actorName: command.actorName, occurredAt: now,
            shardID: Shard.of(groupIDOrPlaceholder: state.groupID), groupVersion: state.version + 1)

        let base = event
        func reject(_ code: RejectionCode, _ reason: String) -> Decision { rejection(base, code, reason) }

        guard command.v == SchemaVersion.current else {
            return reject(.unsupportedVersion, "schema version \(command.v) is not supported")
        }
        guard command.groupID == state.groupID else {
            return reject(.invalidCommand, "the command names group \(command.groupID) but arrived on group \(state.groupID)'s subject")
        }
        // command-api checks all of this already; the bus may carry commands from elsewhere, and
        // an event with text Postgres refuses would stop the group's projection.
        if let problem = command.textProblem { return reject(.invalidCommand, problem) }
        if state.isDeleted { return reject(.groupDeleted, "the group was deleted") }

        switch command.action {
        case .addMember, .changeMemberRole, .removeMember, .deleteGroup:
            return decideMembership(state, command, &event)
        case .createTodo, .updateTodo, .moveTodo, .deleteTodo, .restoreTodo, .setReminder, .clearReminder, .fireReminder:
            return decideTodo(state, command, &event, now: now, limits: limits)
        }
    }

    /// Membership commands come from command-api's outbox: command-api has already checked the
    /// RBAC rules and committed the change in Postgres, so the engine records them as facts (it
    /// only checks that they are well-formed), in order with the group's todo events.
    private static func decideMembership(_ state: GroupState, _ command: TodoCommand, _ event: inout TodoEvent) -> Decision {
        let base = event
        func reject(_ code: RejectionCode, _ reason: String) -> Decision { rejection(base, code, reason) }
        if command.action == .deleteGroup {
            event.eventType = .groupDeleted
            return .emit(event)
        }
        guard let member = command.memberUserID, !member.isEmpty else {
            return reject(.invalidCommand, "member_user_id is required for \(command.action.rawValue)")
        }
        event.memberUserID = member
        event.memberUsername = command.memberUsername
        switch command.action {
        case .addMember, .changeMemberRole:
            guard let role = command.role else { return reject(.invalidCommand, "role is required for \(command.action.rawValue)") }
            event.role = role
            event.eventType = command.action == .addMember || state.members[member] == nil ? .memberAdded : .memberRoleChanged
        default:
            guard state.members[member] != nil else { return reject(.notMember, "\(command.memberUsername ?? member) is not a member") }
            event.role = state.members[member]
            event.eventType = .memberRemoved
        }
        return .emit(event)
    }

    private static func decideTodo(_ state: GroupState, _ command: TodoCommand, _ event: inout TodoEvent, now: Date,
                                   limits: GrowthLimits) -> Decision {
        let base = event
        func reject(_ code: RejectionCode, _ reason: String) -> Decision { rejection(base, code, reason) }
        guard let role = state.members[command.actorUserID] else {
            return reject(.notMember, "\(command.actorName) is not a member of this group")
        }
        guard let todoID = command.todoID, !todoID.isEmpty else {
            return reject(.invalidCommand, "todo_id is required for \(command.action.rawValue)")
        }

        if command.action == .createTodo {
            if state.todos[todoID] != nil { return reject(.todoExists, "a todo with id \(todoID) already exists in this group") }
            guard state.liveTodos < limits.todosPerGroup else {
                return reject(.limitReached, "the group already holds \(limits.todosPerGroup) todos, its limit")
            }
            let title = command.title?.trimmingWhitespace() ?? ""
            guard !title.isEmpty else { return reject(.invalidCommand, "title is required") }
            let status = command.status ?? .todo
            let todo = TodoState(
                todoID: todoID, title: title, notes: command.notes ?? "", status: status,
                position: command.position ?? nextPosition(in: state, status: status), dueDate: command.dueDate.nilIfEmpty,
                assignee: command.assignee.nilIfEmpty, labels: command.labels ?? [], createdBy: command.actorUserID,
                createdByName: command.actorName, createdAt: now, version: 1, isDeleted: false)
            fill(&event, with: todo, type: .todoCreated)
            return .emit(event)
        }

        guard var todo = state.todos[todoID] else {
            return reject(.todoNotFound, "todo \(todoID) does not exist")
        }
        if command.action == .restoreTodo {
            guard todo.isDeleted else { return reject(.notDeleted, "todo \(todoID) is not in the trash") }
            if let deletedAt = todo.deletedAt, now.timeIntervalSince(deletedAt) > Trash.retention {
                return reject(.todoNotFound, "todo \(todoID) was deleted more than \(Int(Trash.retention / 86_400)) days ago and is gone")
            }
            guard state.liveTodos < limits.todosPerGroup else {
                return reject(.limitReached, "the group already holds \(limits.todosPerGroup) todos, its limit")
            }
        } else if todo.isDeleted {
            return reject(.todoNotFound, "todo \(todoID) was deleted")
        }
        switch command.action {
        case .setReminder, .clearReminder, .fireReminder:
            return decideReminder(command, todo: todo, &event, now: now)
        default:
            break
        }
        let capability: GroupCapability
        if todo.createdBy == command.actorUserID {
            capability = .writeOwnTodo
        } else if command.action == .moveTodo, let assignee = todo.assignee, assignee == command.actorName {
            capability = .moveTodoAssignedToSelf
        } else {
            capability = .writeOthersTodo
        }
        guard GroupPolicy.allows(role, capability) else {
            return reject(.forbidden, command.action == .moveTodo
                ? "only the todo's creator, its assignee, an admin or an owner may move it"
                : "only the todo's creator, an admin or an owner may change it")
        }
        if let expected = command.expectedVersion, expected != todo.version {
            return reject(.versionConflict, "the todo is at version \(todo.version), not \(expected)")
        }

        let type: EventType
        switch command.action {
        case .updateTodo:
            if let title = command.title {
                let trimmed = title.trimmingWhitespace()
                guard !trimmed.isEmpty else { return reject(.invalidCommand, "title cannot be empty") }
                todo.title = trimmed
            }
            if let notes = command.notes { todo.notes = notes }
            if let status = command.status { todo.status = status }
            if let position = command.position { todo.position = position }
            // An empty string clears the optional fields.
            if let dueDate = command.dueDate { todo.dueDate = dueDate.isEmpty ? nil : dueDate }
            if let assignee = command.assignee { todo.assignee = assignee.isEmpty ? nil : assignee }
            if let labels = command.labels { todo.labels = labels }
            type = .todoUpdated
        case .moveTodo:
            guard command.status != nil || command.position != nil else {
                return reject(.invalidCommand, "move-todo needs a status or a position")
            }
            let status = command.status ?? todo.status
            todo.position = command.position ?? (status == todo.status ? todo.position : nextPosition(in: state, status: status))
            todo.status = status
            type = .todoMoved
        case .restoreTodo:
            todo.isDeleted = false
            todo.deletedAt = nil
            type = .todoRestored
        default:
            todo.isDeleted = true
            type = .todoDeleted
        }
        todo.version += 1
        fill(&event, with: todo, type: type)
        return .emit(event)
    }

    /// Reminders (DESIGN §9): any member may set one for themself on a live todo that is not done,
    /// at a local time in an IANA zone that comes after now; `fire-reminder` (the scheduler's) is
    /// decided only for the reminder still set for exactly that instant, once it has come. The
    /// events carry the todo's title, so the activity says which todo it was.
    private static func decideReminder(_ command: TodoCommand, todo: TodoState, _ event: inout TodoEvent, now: Date) -> Decision {
        let base = event
        func reject(_ code: RejectionCode, _ reason: String) -> Decision { rejection(base, code, reason) }
        event.title = todo.title
        let current = todo.reminders[command.actorUserID]
        switch command.action {
        case .setReminder:
            guard todo.status != .done else { return reject(.invalidCommand, "the todo is done; a reminder would never be needed") }
            guard let remindAt = command.remindAt, let local = LocalTime(remindAt) else {
                return reject(.invalidCommand, "remind_at is required: a local time like 2026-12-24T09:00")
            }
            guard let zoneName = command.timezone, LocalTime.isZone(zoneName), let zone = TimeZone(identifier: zoneName) else {
                return reject(.invalidCommand, "timezone is required: an IANA time zone name")
            }
            let fireAt = local.instant(in: zone).date
            guard fireAt > now else { return reject(.invalidCommand, "\(remindAt) in \(zoneName) has already passed") }
            guard fireAt <= now.addingTimeInterval(Reminder.horizon) else {
                return reject(.invalidCommand, "a reminder may be at most \(Int(Reminder.horizon / 86_400 / 365)) years ahead")
            }
            event.eventType = .reminderSet
            event.remindAt = local.description
            event.timezone = zoneName
            event.fireAt = fireAt
        case .clearReminder:
            guard let current else { return reject(.noReminder, "you have no reminder on this todo") }
            event.eventType = .reminderCleared
            event.remindAt = current.remindAt
            event.timezone = current.timezone
            event.fireAt = current.fireAt
        default: // fire-reminder
            guard let current, let fireAt = command.fireAt, abs(current.fireAt.timeIntervalSince(fireAt)) < 0.001 else {
                return reject(.noReminder, "no reminder is set for that time (it was cleared, changed or has fired)")
            }
            // A scheduler whose clock runs a little ahead is not refused (its retry would count as decided).
            guard now >= current.fireAt.addingTimeInterval(-Reminder.clockSkew) else {
                return reject(.invalidCommand, "the reminder is not due before \(current.fireAt)")
            }
            event.eventType = .reminderFired
            event.remindAt = current.remindAt
            event.timezone = current.timezone
            event.fireAt = current.fireAt
            event.late = command.late == true ? true : nil
        }
        return .emit(event)
    }

    /// A `command.rejected` outcome built on the command's base event.
    private static func rejection(_ base: TodoEvent, _ code: RejectionCode, _ reason: String) -> Decision {
        var event = base
        event.eventType = .commandRejected
        event.code = code.rawValue
        event.reason = reason
        return .emit(event)
    }

    /// Folds one event into the state (the only way state changes).
    public static func evolve(_ state: GroupState, _ event: TodoEvent) -> GroupState {
        var state = state
        apply(event, to: &state)
        return state
    }

    /// `evolve` in place: the engine owns its group states, and changing them in place costs the
    /// event's own changes, never a copy of the whole state.
    public static func apply(_ event: TodoEvent, to state: inout GroupState) {
        state.version = max(state.version, event.groupVersion)
        state.recentCommands.insert(event.commandID)
        if let sequence = event.commandSequence { state.lastCommandSequence = max(state.lastCommandSequence, sequence) }
        switch event.eventType {
        case .todoCreated, .todoUpdated, .todoMoved, .todoDeleted, .todoRestored:
            guard let todoID = event.todoID else { break }
            let previous = state.todos[todoID]
            let wasLive = previous.map { !$0.isDeleted } ?? false
            let isLive = event.eventType != .todoDeleted
            if wasLive != isLive { state.liveTodos += isLive ? 1 : -1 }
            if isLive, let status = event.status ?? previous?.status, let position = event.position ?? previous?.position {
                state.columnEnds[status] = max(state.columnEnds[status] ?? position, position)
            }
            var todo = TodoState(
                todoID: todoID, title: event.title ?? previous?.title ?? "", notes: event.notes ?? previous?.notes ?? "",
                status: event.status ?? previous?.status ?? .todo, position: event.position ?? previous?.position ?? 0,
                dueDate: event.dueDate, assignee: event.assignee, labels: event.labels ?? previous?.labels ?? [],
                createdBy: event.createdBy ?? previous?.createdBy ?? event.actorUserID,
                createdByName: event.createdByName ?? previous?.createdByName ?? event.actorName,
                createdAt: event.createdAt ?? previous?.createdAt ?? event.occurredAt,
                version: event.version ?? (previous?.version ?? 0) + 1,
                isDeleted: event.eventType == .todoDeleted,
                deletedAt: event.eventType == .todoDeleted ? event.occurredAt : nil)
            // Deleting the todo or moving it to done cancels its reminders.
            if isLive, todo.status != .done, let reminders = previous?.reminders, !reminders.isEmpty { todo.reminders = reminders }
            state.todos[todoID] = todo
        case .reminderSet:
            if let todoID = event.todoID, let remindAt = event.remindAt, let zone = event.timezone, let fireAt = event.fireAt {
                state.todos[todoID]?.reminders[event.actorUserID] = Reminder(remindAt: remindAt, timezone: zone, fireAt: fireAt)
            }
        case .reminderCleared, .reminderFired:
            if let todoID = event.todoID { state.todos[todoID]?.reminders[event.actorUserID] = nil }
        case .memberAdded, .memberRoleChanged:
            if let member = event.memberUserID, let role = event.role { state.members[member] = role }
        case .memberRemoved:
            if let member = event.memberUserID {
                state.members[member] = nil
                // A member who leaves takes their reminders along (they would fire again on a return).
                for (id, todo) in state.todos where todo.reminders[member] != nil { state.todos[id]?.reminders[member] = nil }
            }
        case .groupDeleted:
            state.isDeleted = true
        case .commandRejected:
            break
        }
    }

    /// After the highest position a todo has taken in the column (positions are free-form
    /// numbers; clients may insert between two cards by sending the midpoint). O(1): walking the
    /// group's todos here copied each one and made a create cost as much as the group was big.
    static func nextPosition(in state: GroupState, status: TodoStatus) -> Double {
        (state.columnEnds[status] ?? 0) + 1
    }

    private static func fill(_ event: inout TodoEvent, with todo: TodoState, type: EventType) {
        event.eventType = type
        event.todoID = todo.todoID
        event.title = todo.title
        event.notes = todo.notes
        event.status = todo.status
        event.position = todo.position
        event.dueDate = todo.dueDate
        event.assignee = todo.assignee
        event.labels = todo.labels
        event.version = todo.version
        event.createdBy = todo.createdBy
        event.createdByName = todo.createdByName
        event.createdAt = todo.createdAt
    }
}

extension Shard {
    /// The shard of a group id that has already been validated (it came from a parsed subject).
    static func of(groupIDOrPlaceholder raw: String) -> Int {
        (try? of(rawGroupID: raw)) ?? Int(CRC32.checksum(raw) % UInt32(count))
    }
}

extension Optional where Wrapped == String {
    var nilIfEmpty: String? {
        guard let self, !self.isEmpty else { return nil }
        return self
    }
}
