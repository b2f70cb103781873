import Synchronization

/// A bounded least-recently-used cache of group states. When full, the oldest tenth is evicted
/// at once (so eviction stays cheap); an evicted group is simply rebuilt from its events.
///
/// A state is checked out while a command of its group is decided and put back afterwards, so
/// the processor holds the only reference and changes it in place: a state the cache still
/// shared would be copied whole (its todos and every decided command id) on each change.
public final class GroupStateCache: Sendable {
    private struct Entry {
        var state: GroupState
        /// The delivery epoch in which this process last decided (or verified) for the group.
        var epoch: UInt64
        var lastUse: UInt64
    }

    private struct Storage {
        var entries: [String: Entry] = [:]
        var clock: UInt64 = 0
    }

    public let capacity: Int
    private let storage = Mutex(Storage())

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Removes the group's state and hands it over (nil when it is not cached). Whoever checks a
    /// state out puts it back once it is up to date, or not at all when it may be stale.
    public func checkOut(_ groupID: String) -> (state: GroupState, epoch: UInt64)? {
        storage.withLock { storage in
            guard let entry = storage.entries.removeValue(forKey: groupID) else { return nil }
            return (entry.state, entry.epoch)
        }
    }

    public func put(_ state: GroupState, epoch: UInt64) {
        storage.withLock { storage in
            storage.clock += 1
            storage.entries[state.groupID] = Entry(state: state, epoch: epoch, lastUse: storage.clock)
            if storage.entries.count > capacity {
                let evict = max(1, capacity / 10)
                let oldest = storage.entries.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(evict).map(\.key)
                for key in oldest { storage.entries[key] = nil }
            }
        }
    }

    public func invalidate(_ groupID: String) {
        _ = storage.withLock { $0.entries.removeValue(forKey: groupID) }
    }

    public var count: Int { storage.withLock { $0.entries.count } }
}
