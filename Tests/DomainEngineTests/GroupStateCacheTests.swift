import Testing
@testable import DomainEngine

@Suite("Group state cache")
struct GroupStateCacheTests {
    func state(_ id: String, version: Int64 = 1) -> GroupState {
        var state = GroupState(groupID: id)
        state.version = version
        return state
    }

    @Test func aCheckedOutStateIsGoneUntilPutBack() {
        let cache = GroupStateCache(capacity: 10)
        cache.put(state("g", version: 3), epoch: 7)
        let checkedOut = cache.checkOut("g")
        #expect(checkedOut?.state.version == 3)
        #expect(checkedOut?.epoch == 7)
        // Whoever holds it owns it: nobody else gets a copy that may go stale.
        #expect(cache.checkOut("g") == nil)
        cache.put(state("g", version: 4), epoch: 8)
        #expect(cache.checkOut("g")?.state.version == 4)
    }

    @Test func theLeastRecentlyPutGroupsAreEvictedFirst() {
        let cache = GroupStateCache(capacity: 10)
        for index in 0..<10 { cache.put(state("g\(index)"), epoch: 1) }
        // g0 is used again, so g1 is now the oldest; one more group evicts a tenth (one entry).
        if let (used, epoch) = cache.checkOut("g0") { cache.put(used, epoch: epoch) }
        cache.put(state("g10"), epoch: 1)
        #expect(cache.count == 10)
        #expect(cache.checkOut("g1") == nil)
        #expect(cache.checkOut("g0") != nil)
        #expect(cache.checkOut("g10") != nil)
    }
}
