import Foundation
import Synchronization

/// Remembers which groups are far below the todos-per-group cap, so command-api's early check
/// (`CommandIntake`) costs a count only now and then: a group seen with fewer than half its cap
/// of live todos is not counted again for `ttl`. (No group can double within seconds through the
/// per-user rate limits, and the engine holds the exact count anyway: past the cap a create is
/// rejected with `limit_reached`, whatever this check said.) A group near its cap is counted on
/// every create.
final class TodoCountCache: Sendable {
    private let farBelow = Mutex<[String: ContinuousClock.Instant]>([:])
    let ttl: Duration
    let capacity: Int

    init(ttl: Duration = .seconds(10), capacity: Int = 100_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    /// Whether `group` was seen far below its cap within the TTL.
    func isFarBelow(_ group: String, now: ContinuousClock.Instant = .now) -> Bool {
        farBelow.withLock { entries in
            guard let seen = entries[group] else { return false }
            if now - seen < ttl { return true }
            entries[group] = nil
            return false
        }
    }

    func rememberFarBelow(_ group: String, now: ContinuousClock.Instant = .now) {
        farBelow.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[group] = now
        }
    }
}
