import Foundation
import HTTPAPI
import Logging
import NATS
import ServiceLifecycle
import Synchronization

/// Remembers positive membership answers, so the commands of a member cost one query per `ttl`
/// instead of one each.
///
/// A membership change forgets its group at once: the replica that made it forgets the group
/// itself and announces the change on core NATS (`MembershipChanges.subject`), and every replica's
/// `MembershipChangeListener` forgets the group too. The TTL only bounds what a lost announcement
/// costs (core NATS delivers at most once; a replica disconnected from NATS misses what was said
/// meanwhile), and what it costs is small: the engine checks membership again against the group's
/// own events, so a command from a removed member that passes here is rejected there (202, then a
/// `command.rejected` outcome, instead of 403).
public final class MembershipCache: Sendable {
    private struct State {
        var groups: [String: [UUID: (check: MembershipCheck, expires: Double)]] = [:]
        var count = 0
        /// Rises with every `forget`: an answer read from Postgres before a change that was
        /// forgotten meanwhile must not be remembered after it.
        var epoch: UInt64 = 0
    }

    let ttl: Double
    /// Past this many entries the cache starts over (a bound on memory, not an eviction policy).
    let capacity: Int
    private let state = Mutex(State())

    public init(ttl: Duration, capacity: Int = 100_000) {
        self.ttl = Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18
        self.capacity = capacity
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// The remembered answer, if still fresh, and the epoch to pass to `remember` otherwise.
    func lookup(user: UUID, group: String, now: Double) -> (check: MembershipCheck?, epoch: UInt64) {
        state.withLock { state in
            if let entry = state.groups[group]?[user], entry.expires > now { return (entry.check, state.epoch) }
            return (nil, state.epoch)
        }
    }

    /// Remembers a positive answer read at `epoch`. "Not a member" and "no such group" are never
    /// remembered: someone just added, or a group just created, must not be refused from memory.
    func remember(_ check: MembershipCheck, user: UUID, group: String, asOf epoch: UInt64, now: Double) {
        guard case .member = check else { return }
        state.withLock { state in
            guard state.epoch == epoch else { return }
            if state.count >= capacity {
                state.groups.removeAll(keepingCapacity: true)
                state.count = 0
            }
            if state.groups[group, default: [:]].updateValue((check, now + ttl), forKey: user) == nil { state.count += 1 }
        }
    }

    /// Forgets every answer about `group` (its membership changed, or it was deleted).
    public func forget(group: String) {
        state.withLock { state in
            state.epoch &+= 1
            if let removed = state.groups.removeValue(forKey: group) { state.count -= removed.count }
        }
    }

    /// Answers remembered (for tests and metrics).
    public var count: Int { state.withLock { $0.count } }
}

/// Where command-api replicas announce membership changes to each other.
public enum MembershipChanges {
    /// Core NATS (no stream captures it); the payload is the group id.
    public static let subject = "app.membership.changed"
}

/// Announces that a group's membership changed, so that other replicas forget what they remember.
public protocol MembershipChangeAnnouncing: Sendable {
    func groupChanged(_ group: String) async
}

/// Announces on core NATS. A failure is logged, not thrown: the change itself is committed, and a
/// lost announcement costs at most the cache's TTL (see `MembershipCache`).
public struct NATSMembershipChangeAnnouncer: MembershipChangeAnnouncing {
    let connection: NATSConnection
    let logger: Logger

    public init(connection: NATSConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    public func groupChanged(_ group: String) async {
        do {
            try await connection.publish(MembershipChanges.subject, Data(group.utf8))
        } catch {
            logger.warning("membership change not announced; other replicas may accept the group's removed members until their cache expires",
                           metadata: ["group_id": "\(group)", "error": "\(error)"])
        }
    }
}

/// Forgets the groups other replicas announce (and this one's own, again).
public struct MembershipChangeListener: Service {
    let connection: NATSConnection
    let cache: MembershipCache

    public init(connection: NATSConnection, cache: MembershipCache) {
        self.connection = connection
        self.cache = cache
    }

    /// Subscribes and makes sure the server has the subscription (a round trip) before returning.
    public func subscribe() async throws -> NATSSubscription {
        let subscription = try await connection.subscribe(MembershipChanges.subject)
        try await connection.ping()
        return subscription
    }

    /// Forgets announced groups until the subscription ends.
    public func forgetAnnounced(from subscription: NATSSubscription) async {
        for await message in subscription {
            cache.forget(group: String(decoding: message.payload, as: UTF8.self))
        }
    }

    public func run() async throws {
        let subscription = try await subscribe()
        await withGracefulShutdownHandler {
            await forgetAnnounced(from: subscription)
        } onGracefulShutdown: {
            Task { await subscription.unsubscribe() }
        }
    }
}
