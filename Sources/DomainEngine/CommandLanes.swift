import DequeModule
import Synchronization

/// The commands one engine process holds, queued per group ("lanes"), and handed to workers
/// fairly: a worker takes a run of up to `runLength` commands from the lane at the front of the
/// ready queue, and when it is done the lane, if it has more, goes to the back. So a group with a
/// backlog of thousands takes one run per turn and every other group with work gets its turn in
/// between: a busy board delays only itself.
///
/// Holding is bounded: `enqueue` waits while `maxHeld` items are held (the fetch loop then stops
/// fetching), so memory and unacknowledged messages stay bounded; the consumer's
/// `max_ack_pending` is set above it.
public final class CommandLanes<Item: Sendable>: Sendable {
    public struct Held: Sendable {
        public let item: Item
        /// When it was queued, or last reported as still in progress.
        public fileprivate(set) var since: ContinuousClock.Instant
    }

    private struct Lane {
        var queue = Deque<Held>()
        /// A worker is on it (it is then not in the ready queue).
        var busy = false
    }

    private struct State {
        var lanes: [String: Lane] = [:]
        var ready = Deque<String>()
        var held = 0
        var closed = false
        var workers = Deque<CheckedContinuation<(key: String, run: [Held])?, Never>>()
        var producers: [CheckedContinuation<Void, Never>] = []
    }

    public let maxHeld: Int
    public let runLength: Int
    private let state = Mutex(State())

    public init(maxHeld: Int, runLength: Int) {
        self.maxHeld = max(1, maxHeld)
        self.runLength = max(1, runLength)
    }

    /// Queues items (each on its lane, in the order given); then waits while too many are held.
    /// An item that is a redelivery may stand for one still queued (`replaces` tells), whose place
    /// it then takes.
    public func enqueue(_ items: [(key: String, item: Item, redelivery: Bool)], replaces: (Item, Item) -> Bool = { _, _ in false }) async {
        let now = ContinuousClock.now
        let wake = state.withLock { state -> [(CheckedContinuation<(key: String, run: [Held])?, Never>, (key: String, run: [Held]))] in
            for (key, item, redelivery) in items {
                // In place (through the dictionary's subscript): a copy of a long lane would cost
                // its length on every message.
                if redelivery, let index = state.lanes[key]?.queue.firstIndex(where: { replaces(item, $0.item) }) {
                    state.lanes[key]!.queue[index] = Held(item: item, since: now)
                    continue
                }
                state.lanes[key, default: Lane()].queue.append(Held(item: item, since: now))
                state.held += 1
                if state.lanes[key]!.queue.count == 1 && !state.lanes[key]!.busy { state.ready.append(key) }
            }
            return Self.dispatch(&state, runLength: runLength)
        }
        for (worker, work) in wake { worker.resume(returning: work) }
        guard state.withLock({ $0.held >= maxHeld && !$0.closed }) else { return }
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.held < maxHeld || state.closed { return true }
                state.producers.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// The next run to work on (its lane is then busy until `finished`), or nil once closed.
    public func next() async -> (key: String, run: [Held])? {
        await withCheckedContinuation { continuation in
            let work = state.withLock { state -> (key: String, run: [Held])?? in
                if let work = Self.take(&state, runLength: runLength) { return .some(work) }
                if state.closed { return .some(nil) }
                state.workers.append(continuation)
                return nil
            }
            if let work { continuation.resume(returning: work) }
        }
    }

    /// The run taken from lane `key` is done with (its items acknowledged, dead-lettered or
    /// handed back). The lane's remaining items wait for their next turn.
    public func finished(_ key: String, count: Int) {
        let (wake, producers) = state.withLock { state in
            state.held -= count
            if state.lanes[key] != nil {
                state.lanes[key]!.busy = false
                if state.lanes[key]!.queue.isEmpty {
                    state.lanes[key] = nil
                } else {
                    state.ready.append(key)
                }
            }
            var producers: [CheckedContinuation<Void, Never>] = []
            if state.held < maxHeld { swap(&producers, &state.producers) }
            return (Self.dispatch(&state, runLength: runLength), producers)
        }
        for (worker, work) in wake { worker.resume(returning: work) }
        for producer in producers { producer.resume() }
    }

    /// Removes what lane `key` still holds (its group must start over from redelivery).
    public func drop(_ key: String) -> [Item] {
        state.withLock { state in
            guard let items = state.lanes[key]?.queue.map(\.item) else { return [] }
            state.held -= items.count
            state.lanes[key]!.queue.removeAll()
            return items
        }
    }

    /// Stops handing out runs: waiting workers get nil; returns every item not in a run (to hand
    /// back to the server).
    public func close() -> [Item] {
        let (workers, producers, items) = state.withLock { state in
            state.closed = true
            var items: [Item] = []
            for key in Array(state.lanes.keys) {
                items += state.lanes[key]!.queue.map(\.item)
                state.held -= state.lanes[key]!.queue.count
                state.lanes[key]!.queue.removeAll()
            }
            state.ready.removeAll()
            let workers = state.workers
            state.workers.removeAll()
            let producers = state.producers
            state.producers.removeAll()
            return (workers, producers, items)
        }
        for worker in workers { worker.resume(returning: nil) }
        for producer in producers { producer.resume() }
        return items
    }

    /// Items queued (not in a run) since before `instant`; their time is reset to now, as the
    /// caller reports them in progress.
    public func waiting(since instant: ContinuousClock.Instant) -> [Item] {
        let now = ContinuousClock.now
        return state.withLock { state in
            var items: [Item] = []
            for key in Array(state.lanes.keys) {
                var index = state.lanes[key]!.queue.startIndex
                while index < state.lanes[key]!.queue.endIndex, state.lanes[key]!.queue[index].since < instant {
                    items.append(state.lanes[key]!.queue[index].item)
                    state.lanes[key]!.queue[index].since = now
                    index += 1
                }
            }
            return items
        }
    }

    public var heldCount: Int { state.withLock { $0.held } }
    public var laneCount: Int { state.withLock { $0.lanes.count } }

    private static func take(_ state: inout State, runLength: Int) -> (key: String, run: [Held])? {
        while let key = state.ready.popFirst() {
            guard let count = state.lanes[key]?.queue.count, count > 0, !state.lanes[key]!.busy else { continue }
            var run: [Held] = []
            run.reserveCapacity(min(runLength, count))
            while run.count < runLength, let held = state.lanes[key]!.queue.popFirst() { run.append(held) }
            state.lanes[key]!.busy = true
            return (key, run)
        }
        return nil
    }

    private static func dispatch(_ state: inout State,
                                 runLength: Int) -> [(CheckedContinuation<(key: String, run: [Held])?, Never>, (key: String, run: [Held]))] {
        var wake: [(CheckedContinuation<(key: String, run: [Held])?, Never>, (key: String, run: [Held]))] = []
        while !state.workers.isEmpty, let work = take(&state, runLength: runLength) {
            wake.append((state.workers.removeFirst(), work))
        }
        return wake
    }
}
