import Contracts
import Foundation
import Testing
@testable import DomainEngine

@Suite("Group state: bounded command record and rollback")
struct GroupStateRecordsTests {
    @Test func theRecordOfCommandIDsKeepsOnlyTheLatest() {
        var record = RecentCommandIDs(capacity: 1000)
        for index in 0..<20_000 { record.insert("c\(index)") }
        #expect(record.count == 1000)
        #expect(!record.contains("c0") && !record.contains("c18999"))
        #expect(record.contains("c19000") && record.contains("c19999"))
        record.insert("c19999") // already there: no change
        #expect(record.count == 1000)
        record.removeLast(10)
        #expect(record.count == 990 && !record.contains("c19999") && record.contains("c19989"))
    }

    @Test func onlyACompleteRecordProvesACommandUndecided() {
        var record = RecentCommandIDs(capacity: 3)
        for id in ["a", "b", "c"] { record.insert(id) }
        #expect(record.provesUndecided("x") && !record.provesUndecided("a"), "nothing forgotten yet: a missing id was not decided")
        record.insert("d") // pushes "a" out
        #expect(!record.provesUndecided("a") && !record.provesUndecided("x"), "once an id is forgotten, a missing one proves nothing")
        record.removeLast(1)
        #expect(!record.provesUndecided("x"), "taking a run back does not make the record complete again")
        var unread = RecentCommandIDs(capacity: 3)
        unread.insert("a")
        unread.markIncomplete() // an event message of the group could not be read
        #expect(!unread.provesUndecided("x"))
    }

    func event(_ type: EventType, _ id: String, todo: String? = nil, version: Int64, member: String? = nil) -> TodoEvent {
        var event = TodoEvent(eventID: "e-\(id)", commandID: id, eventType: type, groupID: "g", todoID: todo, actorUserID: "u1",
                              actorName: "olivia", occurredAt: Date(timeIntervalSince1970: 1_795_000_000), shardID: 0,
                              groupVersion: version, title: todo.map { "title \($0)" }, status: .todo, labels: [], position: Double(version),
                              version: 1, createdBy: "u1")
        event.memberUserID = member
        event.role = member == nil ? nil : .member
        event.commandSequence = UInt64(version * 10)
        return event
    }

    @Test func aRolledBackRunLeavesTheStateAsItWas() {
        var state = GroupState(groupID: "g")
        Decider.apply(event(.memberAdded, "c1", version: 1, member: "u1"), to: &state)
        Decider.apply(event(.todoCreated, "c2", todo: "a", version: 2), to: &state)
        state.lastSequence = 40
        let before = state
        let run = [event(.todoCreated, "c3", todo: "b", version: 3), event(.todoDeleted, "c4", todo: "a", version: 4),
                   event(.memberAdded, "c5", version: 5, member: "u2"), event(.groupDeleted, "c6", version: 6)]
        var rollback = GroupStateRollback(state)
        for event in run {
            rollback.note(event, before: state)
            Decider.apply(event, to: &state)
        }
        #expect(state != before)
        rollback.restore(&state)
        #expect(state == before)
    }
}
