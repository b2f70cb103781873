import Testing
@testable import DomainEngine

@Suite("Command lanes: per-group queues taken in turn")
struct CommandLanesTests {
    func items(_ key: String, _ range: Range<Int>) -> [(key: String, item: Int, redelivery: Bool)] {
        range.map { (key, $0, false) }
    }

    @Test func aGroupWithABacklogTakesOneRunPerTurn() async {
        let lanes = CommandLanes<Int>(maxHeld: 10_000, runLength: 4)
        await lanes.enqueue(items("hot", 0..<1000) + items("quiet", 1000..<1001))
        let first = await lanes.next()
        #expect(first?.key == "hot" && first?.run.map(\.item) == [0, 1, 2, 3])
        let second = await lanes.next()
        #expect(second?.key == "quiet" && second?.run.map(\.item) == [1000], "the quiet group is not behind the backlog")
        await lanes.enqueue(items("late", 2000..<2001))
        lanes.finished("hot", count: 4)
        lanes.finished("quiet", count: 1)
        // The hot group went to the back when its run was done: the group that arrived during its run is first.
        let third = await lanes.next()
        #expect(third?.key == "late")
        let fourth = await lanes.next()
        #expect(fourth?.key == "hot" && fourth?.run.map(\.item) == [4, 5, 6, 7], "order within a group is kept")
    }

    @Test func aLaneIsNeverWorkedOnTwiceAtOnce() async {
        let lanes = CommandLanes<Int>(maxHeld: 100, runLength: 2)
        await lanes.enqueue(items("g", 0..<5))
        _ = await lanes.next()
        let waiting = Task { await lanes.next() }
        try? await Task.sleep(for: .milliseconds(50))
        await lanes.enqueue(items("other", 10..<11))
        #expect(await waiting.value?.key == "other", "the busy lane waits for its run to finish")
        lanes.finished("g", count: 2)
        #expect(await lanes.next()?.run.map(\.item) == [2, 3])
    }

    @Test func holdingIsBoundedAndEnqueueWaitsForRoom() async {
        let lanes = CommandLanes<Int>(maxHeld: 10, runLength: 10)
        await lanes.enqueue(items("g", 0..<9))
        let producer = Task { await lanes.enqueue(self.items("g", 9..<12)) ; return lanes.heldCount }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(lanes.heldCount == 12, "queued, then waiting for room")
        let run = await lanes.next()
        #expect(run?.run.count == 10)
        lanes.finished("g", count: 10)
        #expect(await producer.value == 2)
    }

    @Test func aRedeliveryTakesThePlaceOfTheHeldCopy() async {
        let lanes = CommandLanes<Int>(maxHeld: 100, runLength: 10)
        await lanes.enqueue(items("g", 0..<3))
        await lanes.enqueue([("g", 1, true)]) { $0 == $1 }
        #expect(lanes.heldCount == 3)
        #expect(await lanes.next()?.run.map(\.item) == [0, 1, 2])
    }

    @Test func closingHandsBackWhatIsQueuedAndEndsTheWorkers() async {
        let lanes = CommandLanes<Int>(maxHeld: 100, runLength: 2)
        await lanes.enqueue(items("a", 0..<3) + items("b", 3..<4))
        _ = await lanes.next()
        let leftover = lanes.close()
        #expect(Set(leftover) == [2, 3])
        #expect(await lanes.next() == nil)
    }

    @Test func longWaitersAreReportedOnceAndThenTimedAgain() async {
        let lanes = CommandLanes<Int>(maxHeld: 100, runLength: 2)
        await lanes.enqueue(items("a", 0..<3))
        let later = ContinuousClock.now + .seconds(1)
        #expect(lanes.waiting(since: later).sorted() == [0, 1, 2])
        #expect(lanes.waiting(since: ContinuousClock.now - .seconds(1)).isEmpty, "their time was reset")
        #expect(lanes.drop("a").sorted() == [0, 1, 2])
        #expect(lanes.heldCount == 0)
    }
}
