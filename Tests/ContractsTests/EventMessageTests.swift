import Foundation
import Testing
@testable import Contracts

@Suite("Event messages: one event or a run of a group's events")
struct EventMessageTests {
    func event(_ version: Int64, group: String = "g1", title: String = "a \"quoted\"\nline") -> TodoEvent {
        TodoEvent(eventID: "e\(version)", commandID: "c\(version)", eventType: .todoCreated, groupID: group, todoID: "t\(version)",
                  actorUserID: "u1", actorName: "olivia", occurredAt: Date(timeIntervalSince1970: 1_795_000_000), shardID: 7,
                  groupVersion: version, title: title, status: .todo, labels: ["x,y]"], position: 1, version: 1, createdBy: "u1")
    }

    @Test func oneEventIsItsOwnObjectAndARunIsAnArray() throws {
        let single = EventMessage.encode([event(1)])
        #expect(single == event(1).jsonData())
        #expect(try EventMessage.decode(single) == [event(1)])
        let run = (5...9).map { event($0) }
        let payload = EventMessage.encode(run)
        #expect(payload.first == UInt8(ascii: "["))
        #expect(try EventMessage.decode(payload) == run)
        // Each part keeps its own JSON text, byte for byte what the event encodes to.
        let parts = try EventMessage.decodeParts(String(decoding: payload, as: UTF8.self))
        #expect(parts.map { Data($0.jsonText.utf8) } == run.map { $0.jsonData() })
    }

    @Test func whitespaceAroundEventsIsAccepted() throws {
        let text = " [ \(String(decoding: event(1).jsonData(), as: UTF8.self)) ,\n \(String(decoding: event(2).jsonData(), as: UTF8.self)) ] "
        #expect(try EventMessage.decode(Data(text.utf8)).map(\.groupVersion) == [1, 2])
    }

    @Test func aRunMustBeOneGroupsConsecutiveEvents() {
        #expect(throws: EventMessage.InvalidMessage.self) { try EventMessage.decode(EventMessage.encode([event(1), event(3)])) }
        #expect(throws: EventMessage.InvalidMessage.self) { try EventMessage.decode(EventMessage.encode([event(1), event(2, group: "g2")])) }
        #expect(throws: EventMessage.InvalidMessage.self) { try EventMessage.decode(Data("[]".utf8)) }
        #expect(throws: (any Error).self) { try EventMessage.decode(Data("[{}]".utf8)) }
        #expect(throws: (any Error).self) { try EventMessage.decode(Data("[1,2]".utf8)) }
        #expect(throws: (any Error).self) { try EventMessage.decode(Data("[\(String(decoding: event(1).jsonData(), as: UTF8.self))".utf8)) }
        let tooMany = (1...Int64(EventMessage.maxEvents + 1)).map { event($0) }
        #expect(throws: EventMessage.InvalidMessage.self) { try EventMessage.decode(EventMessage.encode(tooMany)) }
    }

    @Test func theSizeEstimateBoundsTheEncodedSize() {
        let long = String(repeating: "\"\n", count: 4000)
        for candidate in [event(1), event(2, title: long), event(3, title: "")] {
            #expect(candidate.jsonData().count <= EventMessage.estimatedSize(of: candidate))
        }
    }
}
