import Contracts
import Foundation
import NATS
@testable import Scheduler
import Testing

@Suite struct IndexChangesTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ type: EventType, _ version: Int64, todo: String? = "t1", actor: String = "u1", name: String = "alice",
               configure: (inout TodoEvent) -> Void = { _ in }) -> TodoEvent {
        var event = TodoEvent(eventID: "e\(version)", commandID: "c\(version)", eventType: type, groupID: "g", todoID: todo,
                              actorUserID: actor, actorName: name, occurredAt: t0, shardID: 1, groupVersion: version, title: "Buy milk")
        configure(&event)
        return event
    }

    @Test func aSetReminderIsIndexedAndAClearEndsIt() {
        let set = IndexChanges([event(.reminderSet, 3) { $0.fireAt = self.t0; $0.remindAt = "2027-01-15T09:00:00"; $0.timezone = "Europe/Berlin" }])
        let key = IndexChanges.ReminderKey(groupID: "g", todoID: "t1", userID: "u1")
        #expect(set.reminders[key] == .init(key: key, version: 3, fireAt: t0, remindAt: "2027-01-15T09:00:00", timezone: "Europe/Berlin",
                                            actorName: "alice"))
        let cleared = IndexChanges([event(.reminderSet, 3) { $0.fireAt = self.t0 }, event(.reminderCleared, 4) { $0.fireAt = self.t0; $0.timezone = "UTC" }])
        #expect(cleared.reminders[key]?.fireAt == nil)
        #expect(cleared.reminders[key]?.timezone == nil)
        #expect(cleared.reminders[key]?.version == 4)
        #expect(cleared.fired.isEmpty)
    }

    @Test func theNewestEventOfAReminderWinsWhateverTheOrder() {
        let key = IndexChanges.ReminderKey(groupID: "g", todoID: "t1", userID: "u1")
        let later = t0.addingTimeInterval(60)
        let changes = IndexChanges([event(.reminderSet, 7) { $0.fireAt = later }, event(.reminderCleared, 5)])
        #expect(changes.reminders[key]?.fireAt == later, "a redelivered older clear does not end a newer reminder")
    }

    @Test func aFiredReminderEndsAndNotifiesItsUser() {
        let changes = IndexChanges([event(.reminderFired, 9, actor: "u2") { $0.late = true }])
        #expect(changes.reminders[.init(groupID: "g", todoID: "t1", userID: "u2")]?.fireAt == nil)
        #expect(changes.fired == [.init(userID: "u2", groupID: "g", todoID: "t1", title: "Buy milk", eventID: "e9", late: true, createdAt: t0)])
    }

    @Test func deletionDoneAndLeavingEndReminders() {
        let changes = IndexChanges([
            event(.todoUpdated, 2) { $0.status = .inProgress },
            event(.todoMoved, 3) { $0.status = .done },
            event(.todoDeleted, 4, todo: "t2"),
            event(.memberRemoved, 5, todo: nil) { $0.memberUserID = "u3" },
            event(.groupDeleted, 6, todo: nil),
        ])
        #expect(changes.todoEnds == [IndexChanges.TodoEnd(groupID: "g", todoID: "t1", version: 3),
                                     IndexChanges.TodoEnd(groupID: "g", todoID: "t2", version: 4)])
        #expect(changes.memberEnds == [IndexChanges.MemberEnd(groupID: "g", userID: nil, version: 6),
                                       IndexChanges.MemberEnd(groupID: "g", userID: "u3", version: 5)])
        #expect(changes.assignments.map(\.version) == [2, 3], "deleting (or restoring) a todo is no assignment")
    }

    @Test func aBatchEndsEachTodoOnceAtItsNewestVersion() {
        let changes = IndexChanges([
            event(.todoMoved, 5) { $0.status = .done },
            event(.todoDeleted, 7),
            event(.memberRemoved, 8, todo: nil) { $0.memberUserID = "u3" },
            event(.memberRemoved, 6, todo: nil) { $0.memberUserID = "u3" },
        ])
        #expect(changes.todoEnds == [IndexChanges.TodoEnd(groupID: "g", todoID: "t1", version: 7)])
        #expect(changes.memberEnds == [IndexChanges.MemberEnd(groupID: "g", userID: "u3", version: 8)])
    }

    @Test func refusedFiringsAreNotedAndOtherRejectionsIgnored() {
        let changes = IndexChanges([
            event(.commandRejected, 4, actor: "u2") { $0.commandID = "fire-abc"; $0.code = "no_reminder" },
            event(.commandRejected, 5) { $0.commandID = "c-client"; $0.code = "forbidden" },
        ])
        #expect(changes.refusals == [.init(key: .init(groupID: "g", todoID: "t1", userID: "u2"), commandID: "fire-abc", code: "no_reminder")])
    }

    @Test func historyFromBeforeTheFirstStartNotifiesNobody() {
        let later = t0.addingTimeInterval(60)
        var changes = IndexChanges([
            event(.todoUpdated, 2, name: "alice") { $0.assignee = "bob" },
            event(.reminderFired, 3, actor: "u2"),
            event(.todoUpdated, 4, name: "alice") { $0.assignee = "carol"; $0.occurredAt = later },
        ])
        changes.notifyOnly(since: t0.addingTimeInterval(1))
        #expect(changes.fired.isEmpty)
        let assigned = AssigneeChanges(changes.assignments, known: [:])
        #expect(assigned.notifications.map(\.version) == [4], "the old assignment is stored, not announced")
        #expect(assigned.updates[.init(groupID: "g", todoID: "t1")]?.assignee == "carol")
        #expect(changes.reminders[.init(groupID: "g", todoID: "t1", userID: "u2")]?.fireAt == nil, "the index still changes")
    }

    @Test func anAssignmentBySomeoneElseNotifiesTheNewAssigneeOnce() {
        let events = IndexChanges([
            event(.todoCreated, 1, name: "alice") { $0.assignee = "bob" },
            event(.todoUpdated, 2, name: "alice") { $0.assignee = "bob"; $0.title = "Renamed" },
            event(.todoUpdated, 3, name: "carol") { $0.assignee = "carol" },
            event(.todoUpdated, 4, name: "carol") { $0.assignee = nil },
            event(.todoUpdated, 5, name: "carol") { $0.assignee = "bob" },
        ]).assignments
        let changes = AssigneeChanges(events, known: [:])
        #expect(changes.notifications.map(\.version) == [1, 5], "bob twice (named anew), carol never (she named herself)")
        #expect(changes.updates[.init(groupID: "g", todoID: "t1")] == .init(assignee: "bob", version: 5))
    }

    @Test func aStoredAssigneeIsNotNotifiedAgainAndOldEventsAreIgnored() {
        let events = IndexChanges([
            event(.todoUpdated, 4, name: "alice") { $0.assignee = "dave" },
            event(.todoUpdated, 8, name: "alice") { $0.assignee = "bob" },
        ]).assignments
        let changes = AssigneeChanges(events, known: [.init(groupID: "g", todoID: "t1"): .init(assignee: "bob", version: 6)])
        #expect(changes.notifications.isEmpty)
        #expect(changes.updates.isEmpty)
    }

    @Test func firingCommandsHaveOneIdPerReminderAndInstant() throws {
        let reminder = DueReminder(groupID: "g", todoID: "t1", userID: "u1", fireAt: t0, actorName: "alice")
        let id = ReminderFiring.commandID(reminder)
        #expect(id == ReminderFiring.commandID(reminder))
        var retried = reminder
        retried.attempt = 1
        #expect(id != ReminderFiring.commandID(retried), "a retry after a not-yet-due refusal has an id of its own")
        #expect(id.count <= 128 && TextRules.isValidID(id))
        #expect(id != ReminderFiring.commandID(DueReminder(groupID: "g", todoID: "t1", userID: "u1", fireAt: t0.addingTimeInterval(1), actorName: "alice")))
        #expect(id != ReminderFiring.commandID(DueReminder(groupID: "g", todoID: "t1", userID: "u2", fireAt: t0, actorName: "alice")))
        let onTime = ReminderFiring.command(for: reminder, now: t0.addingTimeInterval(0.5), lateAfter: .seconds(5))
        #expect(onTime.action == .fireReminder && onTime.actorUserID == "u1" && onTime.fireAt == t0 && onTime.late == nil)
        #expect(onTime.hasStorableIdentity)
        #expect(ReminderFiring.command(for: reminder, now: t0.addingTimeInterval(6), lateAfter: .seconds(5)).late == true)
        let message = try ReminderFiring.message(for: reminder, now: t0, lateAfter: .seconds(5))
        #expect(message.headers[JetStreamHeader.msgID] == id)
        #expect(message.subject.hasPrefix("app.command.") && message.subject.hasSuffix(".group.g"))
    }
}
