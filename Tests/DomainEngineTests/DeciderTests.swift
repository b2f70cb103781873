import Contracts
import Foundation
import Testing
@testable import DomainEngine

/// Builds commands and folds decisions, as the engine does, without NATS.
struct Scenario {
    var state = GroupState(groupID: "g1")
    var events: [TodoEvent] = []
    let now = Date(timeIntervalSince1970: 1_795_000_000)
    private var counter = 0

    static let owner = ("u-owner", "olivia")
    static let admin = ("u-admin", "adam")
    static let member = ("u-member", "mia")
    static let other = ("u-other", "otto")

    /// A group with an owner, an admin and two members.
    static func withMembers() -> Scenario {
        var scenario = Scenario()
        scenario.apply(.addMember, by: owner, member: owner, role: .owner)
        scenario.apply(.addMember, by: owner, member: admin, role: .admin)
        scenario.apply(.addMember, by: owner, member: member, role: .member)
        scenario.apply(.addMember, by: admin, member: other, role: .member)
        return scenario
    }

    mutating func command(_ action: CommandAction, by actor: (String, String), todo: String? = nil,
                          configure: (inout TodoCommand) -> Void = { _ in }) -> TodoCommand {
        counter += 1
        var command = TodoCommand(commandID: "c\(counter)", action: action, groupID: state.groupID, todoID: todo,
                                  actorUserID: actor.0, actorName: actor.1, issuedAt: now)
        configure(&command)
        return command
    }

    /// Decides and, when an event comes out, folds it in. Returns the event (nil: already decided).
    @discardableResult
    mutating func apply(_ command: TodoCommand) -> TodoEvent? {
        switch Decider.decide(state, command, now: now) {
        case .alreadyDecided: return nil
        case .emit(let event):
            state = Decider.evolve(state, event)
            events.append(event)
            return event
        }
    }

    @discardableResult
    mutating func apply(_ action: CommandAction, by actor: (String, String), todo: String? = nil,
                        configure: (inout TodoCommand) -> Void = { _ in }) -> TodoEvent? {
        apply(command(action, by: actor, todo: todo, configure: configure))
    }

    @discardableResult
    mutating func apply(_ action: CommandAction, by actor: (String, String), member: (String, String), role: GroupRole?) -> TodoEvent? {
        apply(action, by: actor) {
            $0.memberUserID = member.0
            $0.memberUsername = member.1
            $0.role = role
        }
    }
}

@Suite("Decider: todos")
struct DeciderTodoTests {
    @Test func createCarriesTheFullSnapshot() throws {
        var s = Scenario.withMembers()
        let event = try #require(s.apply(.createTodo, by: Scenario.member, todo: "t1") {
            $0.title = "  Write the spec  "
            $0.labels = ["docs"]
            $0.dueDate = "2026-12-01"
        })
        #expect(event.eventType == .todoCreated)
        #expect(event.title == "Write the spec", "titles are trimmed")
        #expect(event.status == .todo)
        #expect(event.version == 1)
        #expect(event.createdBy == Scenario.member.0)
        #expect(event.createdByName == Scenario.member.1)
        #expect(event.createdAt == s.now)
        #expect(event.labels == ["docs"])
        #expect(event.dueDate == "2026-12-01")
        #expect(event.groupVersion == 5, "four member events came first")
        #expect(event.eventID == "evt-\(event.commandID)")
        #expect(s.state.todos["t1"]?.title == "Write the spec")
    }

    @Test func groupVersionRisesByExactlyOnePerEvent() {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "t1") { $0.title = "a" }
        s.apply(.createTodo, by: Scenario.member, todo: "t1") { $0.title = "duplicate id" } // rejected: still an event
        s.apply(.moveTodo, by: Scenario.member, todo: "t1") { $0.status = .done }
        s.apply(.deleteTodo, by: Scenario.other, todo: "t1") // forbidden: still an event
        #expect(s.events.map(\.groupVersion) == Array(1...8))
        #expect(s.state.version == 8)
    }

    @Test func newTodosGoToTheEndOfTheirColumn() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "a") { $0.title = "a" }
        s.apply(.createTodo, by: Scenario.member, todo: "b") { $0.title = "b"; $0.position = 10 }
        let c = try #require(s.apply(.createTodo, by: Scenario.member, todo: "c") { $0.title = "c" })
        #expect(c.position == 11)
        let d = try #require(s.apply(.createTodo, by: Scenario.member, todo: "d") { $0.title = "d"; $0.status = .done })
        #expect(d.position == 1)
        let moved = try #require(s.apply(.moveTodo, by: Scenario.member, todo: "a") { $0.status = .done })
        #expect(moved.position == 2, "moved to the end of Done")
        #expect(moved.eventType == .todoMoved && moved.status == .done && moved.version == 2)
    }

    @Test func theColumnEndIsKeptNotSearched() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "a") { $0.title = "a"; $0.position = -5 }
        #expect(s.state.columnEnds[.todo] == -5)
        #expect(try #require(s.apply(.createTodo, by: Scenario.member, todo: "b") { $0.title = "b" }).position == -4)
        s.apply(.createTodo, by: Scenario.member, todo: "c") { $0.title = "c"; $0.position = 7 }
        // A deleted or moved-away card leaves the column's end where it was: new cards still go last.
        s.apply(.deleteTodo, by: Scenario.member, todo: "c")
        #expect(try #require(s.apply(.createTodo, by: Scenario.member, todo: "d") { $0.title = "d" }).position == 8)
        // Read from the kept end, not from the todos (a create costs the same in any group).
        var state = GroupState(groupID: "g1")
        state.columnEnds[.done] = 41
        #expect(Decider.nextPosition(in: state, status: .done) == 42)
        #expect(Decider.nextPosition(in: state, status: .todo) == 1)
        // Replaying the events rebuilds the same ends.
        #expect(s.events.reduce(GroupState(groupID: "g1"), Decider.evolve).columnEnds == s.state.columnEnds)
    }

    @Test func updateAppliesOnlyTheGivenFieldsAndEmptyStringsClear() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "t") {
            $0.title = "t"; $0.notes = "n"; $0.dueDate = "2026-12-01"; $0.assignee = "mia"; $0.labels = ["x"]
        }
        let updated = try #require(s.apply(.updateTodo, by: Scenario.member, todo: "t") {
            $0.notes = "new notes"; $0.dueDate = ""; $0.status = .inProgress
        })
        #expect(updated.eventType == .todoUpdated)
        #expect(updated.title == "t" && updated.notes == "new notes" && updated.dueDate == nil)
        #expect(updated.assignee == "mia" && updated.labels == ["x"] && updated.status == .inProgress)
        #expect(updated.version == 2)
        #expect(updated.createdAt == s.now && updated.createdBy == Scenario.member.0, "the snapshot keeps the creation fields")
    }

    @Test func expectedVersionMustMatch() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t" }
        let stale = try #require(s.apply(.updateTodo, by: Scenario.member, todo: "t") { $0.title = "x"; $0.expectedVersion = 7 })
        #expect(stale.eventType == .commandRejected && stale.code == "version_conflict")
        let fresh = try #require(s.apply(.updateTodo, by: Scenario.member, todo: "t") { $0.title = "x"; $0.expectedVersion = 1 })
        #expect(fresh.eventType == .todoUpdated && fresh.version == 2)
    }

    @Test func deletedTodosAreGoneForEveryAction() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t" }
        let deletion = s.apply(.deleteTodo, by: Scenario.member, todo: "t")
        let deleted = try #require(deletion)
        #expect(deleted.eventType == .todoDeleted && deleted.version == 2)
        for action in [CommandAction.updateTodo, .moveTodo, .deleteTodo] {
            let event = try #require(s.apply(action, by: Scenario.owner, todo: "t") { $0.title = "again"; $0.status = .done })
            #expect(event.code == "todo_not_found", "\(action)")
        }
        // The id stays taken: a create with it is rejected, so ids never mean two todos.
        #expect(s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t" }?.code == "todo_exists")
    }

    @Test func restoreBringsBackTheDeletedTodoAsItWas() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "Keep me"; $0.labels = ["a"]; $0.status = .inProgress }
        #expect(s.apply(.restoreTodo, by: Scenario.member, todo: "t")?.code == "not_deleted", "a live todo is not in the trash")
        s.apply(.deleteTodo, by: Scenario.member, todo: "t")
        #expect(s.state.liveTodos == 0 && s.state.todos["t"]?.deletedAt == s.now)
        let restored = try #require(s.apply(.restoreTodo, by: Scenario.member, todo: "t") { $0.expectedVersion = 2 })
        #expect(restored.eventType == .todoRestored && restored.version == 3)
        #expect(restored.title == "Keep me" && restored.labels == ["a"] && restored.status == .inProgress && restored.createdBy == Scenario.member.0)
        #expect(s.state.liveTodos == 1 && s.state.todos["t"]?.isDeleted == false && s.state.todos["t"]?.deletedAt == nil)
        #expect(s.apply(.updateTodo, by: Scenario.member, todo: "t") { $0.title = "Kept" }?.eventType == .todoUpdated)
        #expect(s.apply(.restoreTodo, by: Scenario.member, todo: "missing")?.code == "todo_not_found")
    }

    @Test func restoreFollowsTheRulesOfDelete() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t" }
        s.apply(.deleteTodo, by: Scenario.member, todo: "t")
        #expect(s.apply(.restoreTodo, by: Scenario.other, todo: "t")?.code == "forbidden", "a member may not restore another's todo")
        #expect(s.apply(.restoreTodo, by: ("u-stranger", "sam"), todo: "t")?.code == "not_member")
        #expect(s.apply(.restoreTodo, by: Scenario.admin, todo: "t") { $0.expectedVersion = 1 }?.code == "version_conflict")
        #expect(s.apply(.restoreTodo, by: Scenario.admin, todo: "t")?.eventType == .todoRestored, "an admin may")
    }

    @Test func restoreEndsWithTheTrashRetentionAndRespectsTheCap() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t" }
        s.apply(.deleteTodo, by: Scenario.member, todo: "t")
        let restore = s.command(.restoreTodo, by: Scenario.member, todo: "t")
        let late = Decider.decide(s.state, restore, now: s.now.addingTimeInterval(Trash.retention + 1))
        guard case .emit(let gone) = late else { Issue.record("no outcome"); return }
        #expect(gone.code == "todo_not_found" && gone.reason?.contains("30 days") == true)
        let onTime = Decider.decide(s.state, restore, now: s.now.addingTimeInterval(Trash.retention - 1))
        guard case .emit(let back) = onTime else { Issue.record("no outcome"); return }
        #expect(back.eventType == .todoRestored)
        s.apply(.createTodo, by: Scenario.member, todo: "u") { $0.title = "u" }
        var one = GrowthLimits()
        one.todosPerGroup = 1
        let full = Decider.decide(s.state, restore, now: s.now, limits: one)
        guard case .emit(let refused) = full else { Issue.record("no outcome"); return }
        #expect(refused.code == "limit_reached", "a restore counts against the group's cap as a create does")
    }

    // MARK: Reminders (DESIGN §9)

    static func remind(_ at: String, _ zone: String = "Europe/Berlin") -> (inout TodoCommand) -> Void {
        { $0.remindAt = at; $0.timezone = zone }
    }

    @Test func aReminderIsSetForItsUserAtTheLocalTimeOfItsZone() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.owner, todo: "t") { $0.title = "Ship it" }
        let setEvent = s.apply(.setReminder, by: Scenario.other, todo: "t", configure: Self.remind("2026-12-24T09:00", "Asia/Kathmandu"))
        let set = try #require(setEvent)
        #expect(set.eventType == .reminderSet && set.actorUserID == Scenario.other.0 && set.title == "Ship it")
        #expect(set.remindAt == "2026-12-24T09:00:00" && set.timezone == "Asia/Kathmandu")
        #expect(set.fireAt == ISO8601DateFormatter().date(from: "2026-12-24T03:15:00Z"), "+05:45")
        #expect(set.version == nil, "a reminder is not a change of the todo")
        #expect(s.state.todos["t"]?.version == 1 && s.state.todos["t"]?.reminders[Scenario.other.0]?.timezone == "Asia/Kathmandu")
        // A second one replaces the first: one per todo and user.
        let againEvent = s.apply(.setReminder, by: Scenario.other, todo: "t", configure: Self.remind("2027-03-28T02:30"))
        let again = try #require(againEvent)
        #expect(again.fireAt == ISO8601DateFormatter().date(from: "2027-03-28T01:30:00Z"), "in the spring-forward gap: 03:30 CEST")
        #expect(s.state.todos["t"]?.reminders.count == 1)
        s.apply(.setReminder, by: Scenario.member, todo: "t", configure: Self.remind("2026-12-24T10:00"))
        #expect(s.state.todos["t"]?.reminders.count == 2, "each member has their own")
    }

    @Test func aReminderMustBeForALiveTodoInTheFutureInAKnownZone() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.owner, todo: "t") { $0.title = "t" }
        s.apply(.createTodo, by: Scenario.owner, todo: "d") { $0.title = "d"; $0.status = .done }
        s.apply(.createTodo, by: Scenario.owner, todo: "x") { $0.title = "x" }
        s.apply(.deleteTodo, by: Scenario.owner, todo: "x")
        #expect(s.apply(.setReminder, by: Scenario.member, todo: "t", configure: Self.remind("2020-01-01T09:00"))?.code == "invalid_command")
        #expect(s.apply(.setReminder, by: Scenario.member, todo: "t", configure: Self.remind("2026-12-24T09:00", "GMT+1"))?.code == "invalid_command")
        #expect(s.apply(.setReminder, by: Scenario.member, todo: "t", configure: Self.remind("2026-12-24 09:00"))?.code == "invalid_command")
        #expect(s.apply(.setReminder, by: Scenario.member, todo: "d", configure: Self.remind("2026-12-24T09:00"))?.code == "invalid_command")
        #expect(s.apply(.setReminder, by: Scenario.member, todo: "x", configure: Self.remind("2026-12-24T09:00"))?.code == "todo_not_found")
        #expect(s.apply(.setReminder, by: ("u-stranger", "sam"), todo: "t", configure: Self.remind("2026-12-24T09:00"))?.code == "not_member")
        #expect(s.apply(.clearReminder, by: Scenario.member, todo: "t")?.code == "no_reminder")
        #expect(s.apply(.setReminder, by: Scenario.member, todo: "t", configure: Self.remind("9999-12-31T23:00", "America/New_York"))?.code
                == "invalid_command", "beyond the horizon (its fire_at would leave the codec's years)")
        #expect(s.apply(.setReminder, by: Scenario.member, todo: "t", configure: Self.remind("2037-01-01T09:00"))?.code == "invalid_command")
    }

    @Test func aMemberWhoLeavesTakesTheirRemindersAlong() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.owner, todo: "t") { $0.title = "t" }
        s.apply(.setReminder, by: Scenario.member, todo: "t", configure: Self.remind("2026-12-24T09:00"))
        s.apply(.setReminder, by: Scenario.admin, todo: "t", configure: Self.remind("2026-12-24T09:00"))
        var rollback = GroupStateRollback(s.state)
        let removal = s.command(.removeMember, by: Scenario.owner) { $0.memberUserID = Scenario.member.0; $0.memberUsername = Scenario.member.1 }
        guard case .emit(let event) = Decider.decide(s.state, removal, now: s.now) else { Issue.record("no outcome"); return }
        rollback.note(event, before: s.state)
        let before = s.state
        Decider.apply(event, to: &s.state)
        #expect(s.state.todos["t"]?.reminders.keys.sorted() == [Scenario.admin.0])
        rollback.restore(&s.state)
        #expect(s.state.todos["t"] == before.todos["t"], "a run that is not stored gives the reminders back")
    }

    @Test func aReminderFiresOnceAtItsTimeUnlessClearedDeletedOrDone() throws {
        var s = Scenario.withMembers()
        for todo in ["a", "b", "c", "d", "e"] { s.apply(.createTodo, by: Scenario.owner, todo: todo) { $0.title = todo } }
        for todo in ["a", "b", "c", "d", "e"] { s.apply(.setReminder, by: Scenario.member, todo: todo, configure: Self.remind("2026-12-24T09:00")) }
        let fireAt = try #require(s.state.todos["a"]?.reminders[Scenario.member.0]?.fireAt)
        func fire(_ todo: String, at: Date = fireAt, now: Date, late: Bool = false) -> TodoEvent? {
            let command = s.command(.fireReminder, by: Scenario.member, todo: todo) { $0.fireAt = at; $0.late = late }
            guard case .emit(let event) = Decider.decide(s.state, command, now: now) else { return nil }
            Decider.apply(event, to: &s.state)
            return event
        }
        #expect(fire("a", now: fireAt.addingTimeInterval(-6))?.code == "invalid_command", "not before its time")
        #expect(fire("a", at: fireAt.addingTimeInterval(60), now: fireAt.addingTimeInterval(61))?.code == "no_reminder", "not for another time")
        let fired = try #require(fire("a", now: fireAt.addingTimeInterval(-2)), "a scheduler whose clock runs a little ahead")
        #expect(fired.eventType == .reminderFired && fired.actorUserID == Scenario.member.0 && fired.late == nil && fired.title == "a")
        #expect(fire("a", now: fireAt.addingTimeInterval(1))?.code == "no_reminder", "never twice")
        #expect(fire("b", now: fireAt.addingTimeInterval(3600), late: true)?.late == true, "after a downtime: late")

        #expect(s.apply(.clearReminder, by: Scenario.member, todo: "c")?.eventType == .reminderCleared)
        #expect(fire("c", now: fireAt)?.code == "no_reminder", "cleared")
        s.apply(.deleteTodo, by: Scenario.owner, todo: "d")
        s.apply(.restoreTodo, by: Scenario.owner, todo: "d")
        #expect(fire("d", now: fireAt)?.code == "no_reminder", "deleting cancels it, and a restore does not bring it back")
        s.apply(.moveTodo, by: Scenario.owner, todo: "e") { $0.status = .done }
        #expect(fire("e", now: fireAt)?.code == "no_reminder", "done cancels it")
        #expect(s.state.todos.values.allSatisfy { $0.reminders.isEmpty })
    }

    @Test func anEditKeepsTheReminders() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.owner, todo: "t") { $0.title = "t" }
        s.apply(.setReminder, by: Scenario.member, todo: "t", configure: Self.remind("2026-12-24T09:00"))
        s.apply(.updateTodo, by: Scenario.owner, todo: "t") { $0.title = "renamed" }
        s.apply(.moveTodo, by: Scenario.owner, todo: "t") { $0.status = .inProgress }
        #expect(s.state.todos["t"]?.reminders[Scenario.member.0] != nil)
    }

    @Test("rejections", arguments: [
        ("missing todo id", CommandAction.updateTodo, "", "invalid_command"),
        ("unknown todo", .moveTodo, "nope", "todo_not_found"),
        ("empty title on create", .createTodo, "fresh", "invalid_command"),
        ("move without status or position", .moveTodo, "t", "invalid_command"),
    ])
    func rejections(name: String, action: CommandAction, todo: String, code: String) throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t" }
        let event = try #require(s.apply(action, by: Scenario.member, todo: todo) {
            if action == .createTodo { $0.title = "   " }
            if action == .updateTodo { $0.title = "x" }
        })
        #expect(event.eventType == .commandRejected)
        #expect(event.code == code, "\(name)")
        #expect(event.reason?.isEmpty == false)
    }

    @Test func nonMembersAreRejected() throws {
        var s = Scenario.withMembers()
        let event = try #require(s.apply(.createTodo, by: ("u-stranger", "sam"), todo: "t") { $0.title = "t" })
        #expect(event.code == "not_member")
        #expect(s.state.todos.isEmpty)
    }

    @Test func unsupportedSchemaVersionAndWrongGroupAreRejected() throws {
        var s = Scenario.withMembers()
        let future = s.command(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t"; $0.v = 99 }
        #expect(s.apply(future)?.code == "unsupported_version")
        let misrouted = s.command(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t"; $0.groupID = "g2" }
        #expect(s.apply(misrouted)?.code == "invalid_command")
    }

    @Test func aDecidedCommandProducesNoSecondOutcome() throws {
        var s = Scenario.withMembers()
        let create = s.command(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t" }
        #expect(s.apply(create) != nil)
        let versionBefore = s.state.version
        #expect(Decider.decide(s.state, create, now: s.now) == .alreadyDecided)
        // Also for a command whose outcome was a rejection.
        let bad = s.command(.deleteTodo, by: Scenario.member, todo: "missing")
        #expect(s.apply(bad)?.code == "todo_not_found")
        #expect(Decider.decide(s.state, bad, now: s.now) == .alreadyDecided)
        #expect(s.state.version == versionBefore + 1)
    }
}

@Suite("Decider: who may change whose todo (DESIGN §5)")
struct DeciderRBACTests {
    static let roles: [(String, (String, String))] = [
        ("owner", Scenario.owner), ("admin", Scenario.admin), ("member", Scenario.member),
    ]

    @Test("own and others' todos", arguments: [CommandAction.updateTodo, .moveTodo, .deleteTodo], [0, 1, 2])
    func matrix(action: CommandAction, roleIndex: Int) throws {
        let (role, actor) = Self.roles[roleIndex]
        // Own todo: every role may.
        var own = Scenario.withMembers()
        own.apply(.createTodo, by: actor, todo: "mine") { $0.title = "mine" }
        let onOwn = try #require(own.apply(action, by: actor, todo: "mine") { $0.title = "x"; $0.status = .done })
        #expect(onOwn.eventType != .commandRejected, "\(role) on own todo: \(onOwn.reason ?? "")")

        // Someone else's todo: owner and admin may, a member may not.
        var others = Scenario.withMembers()
        others.apply(.createTodo, by: Scenario.other, todo: "theirs") { $0.title = "theirs" }
        let onOthers = try #require(others.apply(action, by: actor, todo: "theirs") { $0.title = "x"; $0.status = .done })
        if role == "member" {
            #expect(onOthers.code == "forbidden")
            #expect(others.state.todos["theirs"]?.version == 1, "nothing changed")
        } else {
            #expect(onOthers.eventType != .commandRejected, "\(role) on another's todo")
        }
    }

    @Test func anAssigneeMayMoveButNotEditOrDeleteAnothersTodo() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.other, todo: "assigned") { $0.title = "for mia"; $0.assignee = Scenario.member.1 }
        s.apply(.createTodo, by: Scenario.other, todo: "unassigned") { $0.title = "not for mia" }
        let moved = try #require(s.apply(.moveTodo, by: Scenario.member, todo: "assigned") { $0.status = .done })
        #expect(moved.eventType == .todoMoved && moved.status == .done)
        let edit = try #require(s.apply(.updateTodo, by: Scenario.member, todo: "assigned") { $0.title = "renamed" })
        #expect(edit.code == "forbidden")
        let delete = s.apply(.deleteTodo, by: Scenario.member, todo: "assigned")
        #expect(delete?.code == "forbidden")
        let moveOther = try #require(s.apply(.moveTodo, by: Scenario.member, todo: "unassigned") { $0.status = .done })
        #expect(moveOther.code == "forbidden")
    }

    @Test func everyMemberMayCreate() {
        for (_, actor) in Self.roles + [("other", Scenario.other)] {
            var s = Scenario.withMembers()
            #expect(s.apply(.createTodo, by: actor, todo: "t") { $0.title = "t" }?.eventType == .todoCreated)
        }
    }
}

@Suite("Decider: membership")
struct DeciderMembershipTests {
    @Test func membershipEventsTrackRoles() throws {
        var s = Scenario.withMembers()
        #expect(s.state.members[Scenario.admin.0] == .admin)
        let promotion = s.apply(.changeMemberRole, by: Scenario.owner, member: Scenario.member, role: .admin)
        let promoted = try #require(promotion)
        #expect(promoted.eventType == .memberRoleChanged && promoted.role == .admin)
        #expect(s.state.members[Scenario.member.0] == .admin)

        let removal = s.apply(.removeMember, by: Scenario.owner, member: Scenario.other, role: nil)
        let removed = try #require(removal)
        #expect(removed.eventType == .memberRemoved && removed.memberUserID == Scenario.other.0)
        #expect(s.state.members[Scenario.other.0] == nil)
        // A removed member can no longer act.
        #expect(s.apply(.createTodo, by: Scenario.other, todo: "t") { $0.title = "t" }?.code == "not_member")
        // Removing someone who is not a member is rejected, not silently dropped.
        #expect(s.apply(.removeMember, by: Scenario.owner, member: Scenario.other, role: nil)?.code == "not_member")
    }

    @Test func malformedMembershipCommandsAreRejected() {
        var s = Scenario.withMembers()
        #expect(s.apply(.addMember, by: Scenario.owner) { $0.role = .member }?.code == "invalid_command")
        #expect(s.apply(.addMember, by: Scenario.owner) { $0.memberUserID = "u-x" }?.code == "invalid_command")
    }

    @Test func deletedGroupRejectsEverything() throws {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t" }
        #expect(s.apply(.deleteGroup, by: Scenario.owner)?.eventType == .groupDeleted)
        #expect(s.state.isDeleted)
        #expect(s.apply(.createTodo, by: Scenario.owner, todo: "u") { $0.title = "u" }?.code == "group_deleted")
        #expect(s.apply(.addMember, by: Scenario.owner, member: ("u-new", "nel"), role: .member)?.code == "group_deleted")
    }

    @Test func replayingTheEventsRebuildsTheSameState() {
        var s = Scenario.withMembers()
        s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "t"; $0.labels = ["a"] }
        s.apply(.moveTodo, by: Scenario.admin, todo: "t") { $0.status = .inProgress; $0.position = 3 }
        s.apply(.changeMemberRole, by: Scenario.owner, member: Scenario.member, role: .admin)
        s.apply(.createTodo, by: Scenario.other, todo: "u") { $0.title = "u" }
        s.apply(.deleteTodo, by: Scenario.owner, todo: "u")
        let rebuilt = s.events.reduce(GroupState(groupID: "g1"), Decider.evolve)
        #expect(rebuilt == s.state)
    }

    @Test func textThatBreaksTheRulesIsRejectedEvenFromTheBus() {
        var s = Scenario.withMembers()
        // command-api refuses these; a command published straight onto the bus is decided
        // `invalid_command`, so no event carries text the projection cannot store.
        let nul = s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "a\u{0}b" }
        #expect(nul?.eventType == .commandRejected)
        #expect(nul?.code == "invalid_command")
        #expect(nul?.reason == "title: must not contain control characters (found U+0000)")
        #expect(s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "x"; $0.labels = ["\u{0}"] }?.code == "invalid_command")
        #expect(s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "x"; $0.dueDate = "2026-02-30" }?.code == "invalid_command")
        #expect(s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "x"; $0.notes = "Cafe\u{301}" }?.code == "invalid_command")
        #expect(s.state.todos["t"] == nil)
        #expect(s.apply(.createTodo, by: Scenario.member, todo: "t") { $0.title = "Caf\u{E9}"; $0.notes = "a\nb" }?.eventType == .todoCreated)
    }

    @Test func aGroupHoldsAtMostItsLimitOfLiveTodos() {
        var s = Scenario.withMembers()
        let limits = { () -> GrowthLimits in var l = GrowthLimits(); l.todosPerGroup = 2; return l }()
        func create(_ id: String) -> TodoEvent? {
            let command = s.command(.createTodo, by: Scenario.member, todo: id) { $0.title = id }
            guard case .emit(let event) = Decider.decide(s.state, command, now: s.now, limits: limits) else { return nil }
            Decider.apply(event, to: &s.state)
            return event
        }
        #expect(create("a")?.eventType == .todoCreated)
        #expect(create("b")?.eventType == .todoCreated)
        #expect(s.state.liveTodos == 2)
        #expect(create("c")?.code == "limit_reached")
        // Deleting one makes room again.
        s.apply(.deleteTodo, by: Scenario.member, todo: "a")
        #expect(s.state.liveTodos == 1)
        #expect(create("c")?.eventType == .todoCreated)
    }
}
