import Contracts
import Foundation
import NIOCore
import Testing
@testable import Streamer

/// The state machine in a reference, so that `#expect` can call its mutating methods.
final class Box {
    var state: LiveStreamState
    init(userID: String, capacity: Int) { state = LiveStreamState(userID: userID, capacity: capacity) }
    var phase: LiveStreamState.Phase { state.phase }
    var last: Int64? { state.last }
    var held: [RenderedEvent] { state.held }
    func start(resumeAfter: Int64?) -> [LiveStreamState.Step] { state.start(resumeAfter: resumeAfter) }
    func deliver(_ event: RenderedEvent, writable: Bool) -> LiveStreamState.Delivery { state.deliver(event, writable: writable) }
    func caughtUp(last: Int64, ended: Bool) -> [LiveStreamState.Step] { state.caughtUp(last: last, ended: ended) }
    func wantsHeartbeat(writable: Bool) -> Bool { state.wantsHeartbeat(writable: writable) }
    func end() -> Bool { state.end() }
}

/// The ordering and slow-client rules of one SSE stream, without a connection.
@Suite("live stream state")
struct LiveStreamStateTests {
    static let viewer = "00000000-0000-0000-0000-00000000000a"

    static func event(_ version: Int64, _ type: EventType = .todoCreated, member: String? = nil) -> RenderedEvent {
        var event = TodoEvent(eventID: "evt-\(version)", commandID: "cmd-\(version)", eventType: type, groupID: "g",
                              todoID: type == .todoCreated ? "t\(version)" : nil, actorUserID: "00000000-0000-0000-0000-00000000000b",
                              actorName: "bob", occurredAt: Date(timeIntervalSince1970: 0), shardID: 0, groupVersion: version)
        if type == .todoCreated { event.title = "t\(version)"; event.status = .todo; event.position = 1; event.version = 1 }
        event.memberUserID = member
        return RenderedEvent(event: event, json: String(decoding: event.jsonBytes(), as: UTF8.self))
    }

    /// The versions an action list writes, in order.
    static func versions(_ steps: [LiveStreamState.Step]) -> [Int64] {
        steps.compactMap { step -> Int64? in
            guard case .write(let event) = step else { return nil }
            return event.groupVersion
        }
    }

    static func written(_ delivery: LiveStreamState.Delivery) -> Int64? {
        if case .write(let event) = delivery { return event.groupVersion }
        return nil
    }

    @Test func eventsBeforeTheHeadAreHeldThenWrittenInOrderOnce() {
        let state = Box(userID: Self.viewer, capacity: 8)
        #expect(state.deliver(Self.event(1), writable: true) == .ignore)
        #expect(state.deliver(Self.event(2), writable: true) == .ignore)
        #expect(state.deliver(Self.event(2), writable: true) == .ignore) // duplicate from the bus
        let steps = state.start(resumeAfter: nil)
        #expect(Self.versions(steps) == [1, 2])
        #expect(state.phase == .live)
        #expect(Self.written(state.deliver(Self.event(3), writable: true)) == 3)
        #expect(state.deliver(Self.event(3), writable: true) == .ignore)
        #expect(state.deliver(Self.event(1), writable: true) == .ignore)
    }

    @Test func resumingReplaysFirstAndSkipsWhatTheReplayWrote() {
        let state = Box(userID: Self.viewer, capacity: 8)
        #expect(state.deliver(Self.event(6), writable: true) == .ignore)
        #expect(state.start(resumeAfter: 4) == [.catchUp(after: 4, through: nil)])
        #expect(state.deliver(Self.event(7), writable: true) == .ignore) // held while catching up
        // The replay wrote 5 and 6 (6 had also arrived live); 7 follows from the held events.
        #expect(Self.versions(state.caughtUp(last: 6, ended: false)) == [7])
        #expect(state.last == 7)
        #expect(state.phase == .live)
    }

    @Test func aHoleIsFilledFromJetStreamBeforeNewerEvents() {
        let state = Box(userID: Self.viewer, capacity: 8)
        _ = state.start(resumeAfter: nil)
        #expect(Self.written(state.deliver(Self.event(1), writable: true)) == 1)
        #expect(state.deliver(Self.event(4), writable: true) == .catchUp(after: 1, through: 3))
        #expect(state.phase == .catchingUp)
        #expect(state.deliver(Self.event(5), writable: true) == .ignore)
        #expect(Self.versions(state.caughtUp(last: 3, ended: false)) == [4, 5])
    }

    @Test func aSecondHoleInTheHeldEventsStartsAnotherCatchUpAndKeepsTheRest() {
        let state = Box(userID: Self.viewer, capacity: 8)
        _ = state.start(resumeAfter: 0)
        for version: Int64 in [1, 2, 5, 6] { _ = state.deliver(Self.event(version), writable: true) }
        // The replay only got as far as 1 (JetStream had not stored 2 yet when it read).
        let steps = state.caughtUp(last: 1, ended: false)
        #expect(Self.versions(steps) == [2])
        #expect(steps.last == .catchUp(after: 2, through: 4))
        #expect(state.held.map(\.groupVersion) == [5, 6])
        #expect(Self.versions(state.caughtUp(last: 4, ended: false)) == [5, 6])
    }

    @Test func theStreamEndsAfterItsMembersRemovalOrTheGroupsDeletion() {
        let removed = Box(userID: Self.viewer, capacity: 8)
        _ = removed.start(resumeAfter: nil)
        #expect(Self.written(removed.deliver(Self.event(1, .memberRemoved, member: "someone-else"), writable: true)) == 1)
        guard case .writeAndEnd = removed.deliver(Self.event(2, .memberRemoved, member: Self.viewer), writable: true) else {
            Issue.record("the viewer's removal ends the stream"); return
        }
        #expect(removed.phase == .ended)
        #expect(removed.deliver(Self.event(3), writable: true) == .ignore)

        let deleted = Box(userID: Self.viewer, capacity: 8)
        _ = deleted.deliver(Self.event(1, .groupDeleted), writable: true)
        _ = deleted.deliver(Self.event(2), writable: true)
        let steps = deleted.start(resumeAfter: nil)
        #expect(Self.versions(steps) == [1])
        #expect(steps.last == .end)
    }

    @Test func aReplayThatWroteTheFinalEventEndsTheStream() {
        let state = Box(userID: Self.viewer, capacity: 8)
        _ = state.start(resumeAfter: 3)
        _ = state.deliver(Self.event(9), writable: true)
        #expect(state.caughtUp(last: 5, ended: true) == [.end])
        #expect(state.phase == .ended)
        #expect(state.held.isEmpty)
    }

    @Test func aClientThatStopsReadingIsDroppedAfterCapacityEventsWithoutRoom() {
        let state = Box(userID: Self.viewer, capacity: 3)
        _ = state.start(resumeAfter: nil)
        #expect(Self.written(state.deliver(Self.event(1), writable: false)) == 1)
        #expect(Self.written(state.deliver(Self.event(2), writable: false)) == 2)
        #expect(Self.written(state.deliver(Self.event(3), writable: true)) == 3) // it read: the count starts again
        for version: Int64 in 4...6 { #expect(Self.written(state.deliver(Self.event(version), writable: false)) == version) }
        #expect(state.deliver(Self.event(7), writable: false) == .drop)
        #expect(state.phase == .ended)
        #expect(state.deliver(Self.event(8), writable: true) == .ignore)
    }

    @Test func heldEventsAreBoundedToo() {
        let state = Box(userID: Self.viewer, capacity: 2)
        _ = state.start(resumeAfter: 0)
        #expect(state.deliver(Self.event(1), writable: true) == .ignore)
        #expect(state.deliver(Self.event(2), writable: true) == .ignore)
        #expect(state.deliver(Self.event(3), writable: true) == .drop)
        #expect(state.caughtUp(last: 3, ended: false).isEmpty, "nothing more once dropped")
    }

    @Test func heartbeatsOnlyGoToLiveStreamsWithRoom() {
        let state = Box(userID: Self.viewer, capacity: 2)
        #expect(!state.wantsHeartbeat(writable: true)) // before the head
        _ = state.start(resumeAfter: nil)
        #expect(state.wantsHeartbeat(writable: true))
        #expect(!state.wantsHeartbeat(writable: false))
        #expect(state.end())
        #expect(!state.end(), "ends once")
        #expect(!state.wantsHeartbeat(writable: true))
    }
}
