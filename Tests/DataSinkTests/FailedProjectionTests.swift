import Contracts
import Foundation
import Testing
@testable import DataSink

@Suite("The stand-in of an event the projection refuses")
struct FailedProjectionTests {
    @Test func standInIsARejectionAtTheSameVersionWithNothingPostgresRefuses() throws {
        let original = TodoEvent(
            eventID: "evt-c1", commandID: "c1", eventType: .todoCreated, groupID: "g1", todoID: "t\u{0}1",
            actorUserID: "u1", actorName: "ali\u{0}ce", occurredAt: Date(timeIntervalSince1970: 1_795_000_000),
            shardID: 7, groupVersion: 42, title: "a\u{0}b")
        let event = try ProjectedEvent(payload: original.jsonData(), streamSequence: 99)
        let standIn = FailedProjection.standIn(for: event)
        #expect(standIn.event.eventType == .commandRejected)
        #expect(standIn.event.code == "projection_failed")
        #expect(standIn.event.groupVersion == 42)
        #expect(standIn.streamSequence == 99)
        #expect(standIn.event.eventID == "evt-c1")
        #expect(standIn.event.commandID == "c1")
        #expect(standIn.event.todoID == nil) // not a valid id: left out
        #expect(standIn.event.actorName == "alice")
        #expect(standIn.event.title == nil)
        // The database's error stays with operators (failed_projections.error), not the client.
        #expect(standIn.event.reason == "the outcome (todo.created) could not be stored; operators have been told")
        #expect(!standIn.json.contains("\\u0000"))
        // Its JSON is what the sink stores as the payload: a valid event again.
        #expect(try TodoEvent(json: Data(standIn.json.utf8)) == standIn.event)
    }

    @Test func cleanDropsControlCharactersAndBoundsLength() {
        #expect(FailedProjection.clean("a\u{0}b\u{7F}c\u{9F}d\u{FFFE}", limit: 10) == "abcd")
        #expect(FailedProjection.clean(String(repeating: "x", count: 20), limit: 5) == "xxxxx")
    }
}
