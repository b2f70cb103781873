import Foundation
import Synchronization

/// Token buckets keyed by a string (a user id, a client IP): `rate` tokens a second up to `burst`.
/// In memory and per process: behind N replicas a client gets at most N times the rate, which is the
/// usual trade for not putting a shared store on every request.
public final class RateLimiter: Sendable {
    public enum Decision: Equatable, Sendable {
        case allowed
        case limited(retryAfterSeconds: Int)
    }

    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    public let rate: Double
    public let burst: Double
    private final class Shard: Sendable {
        let buckets = Mutex<[String: Bucket]>([:])
    }

    private let shards: [Shard]
    private let maxKeysPerShard: Int

    public init(ratePerSecond: Double, burst: Double, maxKeys: Int = 200_000) {
        precondition(ratePerSecond > 0 && burst >= 1)
        rate = ratePerSecond
        self.burst = burst
        shards = (0..<16).map { _ in Shard() }
        maxKeysPerShard = max(1, maxKeys / 16)
    }

    /// Takes one token for `key` at `now` (seconds on a monotonic clock).
    public func take(_ key: String, now: Double = RateLimiter.now()) -> Decision {
        let shard = shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
        return shard.buckets.withLock { buckets in
            if buckets.count >= maxKeysPerShard && buckets[key] == nil {
                // Forget the buckets that have refilled: they hold no information.
                buckets = buckets.filter { now - $0.value.updated < burst / rate }
            }
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return .allowed
            }
            return .limited(retryAfterSeconds: max(1, Int(((1 - bucket.tokens) / rate).rounded(.up))))
        }
    }

    public static func now() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }
}
