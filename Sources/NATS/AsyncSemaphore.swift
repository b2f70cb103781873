import DequeModule
import Synchronization

/// A counting semaphore whose `acquire` suspends instead of blocking a thread, and whose `release`
/// may be called from any thread (including libnats callback threads). Waiters are served in order.
public final class AsyncSemaphore: Sendable {
    private struct Waiter {
        let count: Int
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var available: Int
        var waiters: Deque<Waiter> = []
    }

    private let state: Mutex<State>
    public let capacity: Int

    public init(permits: Int) {
        capacity = permits
        state = Mutex(State(available: permits))
    }

    /// Takes `count` permits (at most the capacity), waiting until they are free.
    public func acquire(_ count: Int = 1) async {
        let count = min(count, capacity)
        let acquired = state.withLock { state -> Bool in
            if state.waiters.isEmpty && state.available >= count {
                state.available -= count
                return true
            }
            return false
        }
        if acquired { return }
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.waiters.isEmpty && state.available >= count {
                    state.available -= count
                    return true
                }
                state.waiters.append(Waiter(count: count, continuation: continuation))
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    public func release(_ count: Int = 1) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.available += count
            var ready: [CheckedContinuation<Void, Never>] = []
            while let first = state.waiters.first, first.count <= state.available {
                state.available -= first.count
                ready.append(state.waiters.removeFirst().continuation)
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    var availablePermits: Int { state.withLock { $0.available } }
    var waitingCount: Int { state.withLock { $0.waiters.count } }
}
