import Contracts
import Foundation
import HTTPAPI
import Logging
import Metrics
import NATS
import ServiceLifecycle
import Sharding
import Synchronization

/// Who is viewing a group now, across streamer replicas (DESIGN §10), with no Postgres write:
/// a viewer is a user with an open stream of the group. Each replica announces its own viewers of a
/// group on core NATS (`app.presence.<group>`: the whole list, so a lost message is repaired by the
/// next) when they change and every `heartbeat`; every replica keeps the others' lists until
/// `ttl` passes without one (a replica that crashed), and tells its own streams of the group
/// (`datastar-patch-signals` with `{"online":[…]}`) whenever the group's online set changes.
public final class Presence: Sendable {
    struct Viewer: Sendable, Equatable {
        let name: String
        var streams: Int
    }

    struct Remote: Sendable {
        var users: [String: String] // user id → name
        var seen: ContinuousClock.Instant
        /// The announcement's place in its replica's order: an older one arriving late is ignored.
        var sequence: UInt64
    }

    struct State {
        var local: [String: [String: Viewer]] = [:] // group → user id → viewer
        var remote: [String: [String: Remote]] = [:] // group → replica → its viewers
        var sequence: UInt64 = 0
        /// The last sequence heard from each replica (kept while the replica is heard of).
        var heardSequence: [String: UInt64] = [:]
    }

    /// This replica's id on the wire.
    public let replica = UUID().uuidString.lowercased()
    let ttl: Duration
    private let state = Mutex(State())
    private let announcements = Counter(label: "presence_announcements_total")
    private let ignored = Counter(label: "presence_announcements_ignored_total")

    public init(ttl: Duration = .seconds(45)) {
        self.ttl = ttl
    }

    /// A stream of the group opened; true when the user was not viewing it here yet.
    public func opened(_ group: String, userID: String, name: String) -> Bool {
        state.withLock { state in
            var viewers = state.local[group, default: [:]]
            defer { state.local[group] = viewers }
            if viewers[userID] != nil {
                viewers[userID]!.streams += 1
                return false
            }
            viewers[userID] = Viewer(name: name, streams: 1)
            return true
        }
    }

    /// A stream of the group ended; true when it was the user's last one here.
    public func closed(_ group: String, userID: String) -> Bool {
        state.withLock { state in
            guard var viewers = state.local[group], var viewer = viewers[userID] else { return false }
            viewer.streams -= 1
            if viewer.streams > 0 {
                viewers[userID] = viewer
                state.local[group] = viewers
                return false
            }
            viewers[userID] = nil
            state.local[group] = viewers.isEmpty ? nil : viewers
            return true
        }
    }

    /// Another replica's list of a group's viewers; true when the group's online set changed.
    func heard(_ announcement: PresenceAnnouncement, now: ContinuousClock.Instant = .now) -> Bool {
        guard announcement.replica != replica else { return false }
        return state.withLock { state in
            let key = announcement.replica + "/" + announcement.group
            guard announcement.sequence > state.heardSequence[key, default: 0] else { return false }
            state.heardSequence[key] = announcement.sequence
            let before = Self.online(state, announcement.group, now: now, ttl: ttl)
            var replicas = state.remote[announcement.group, default: [:]]
            replicas[announcement.replica] = announcement.users.isEmpty
                ? nil : Remote(users: announcement.users, seen: now, sequence: announcement.sequence)
            state.remote[announcement.group] = replicas.isEmpty ? nil : replicas
            return Self.online(state, announcement.group, now: now, ttl: ttl) != before
        }
    }

    /// Forgets the lists of replicas not heard for `ttl`; returns the groups whose online set changed.
    func expire(now: ContinuousClock.Instant = .now) -> [String] {
        state.withLock { state in
            var changed: [String] = []
            for (group, replicas) in state.remote {
                let fresh = replicas.filter { now - $0.value.seen < ttl }
                guard fresh.count != replicas.count else { continue }
                state.remote[group] = fresh.isEmpty ? nil : fresh
                changed.append(group)
            }
            // Sequences of replica/group pairs with no list left (bounded by what is remembered).
            if state.heardSequence.count > 4 * max(1, state.remote.values.reduce(0) { $0 + $1.count }) + 1024 {
                let live = Set(state.remote.flatMap { group, replicas in replicas.keys.map { $0 + "/" + group } })
                state.heardSequence = state.heardSequence.filter { live.contains($0.key) }
            }
            return changed
        }
    }

    /// The usernames viewing the group now, on any replica, sorted.
    public func online(_ group: String, now: ContinuousClock.Instant = .now) -> [String] {
        state.withLock { Self.online($0, group, now: now, ttl: ttl) }
    }

    private static func online(_ state: State, _ group: String, now: ContinuousClock.Instant, ttl: Duration) -> [String] {
        var names = Set(state.local[group]?.values.map(\.name) ?? [])
        if let replicas = state.remote[group] {
            for remote in replicas.values where now - remote.seen < ttl { names.formUnion(remote.users.values) }
        }
        return names.sorted()
    }

    /// This replica's announcement for the group (an empty list when nobody views it here).
    func announcement(for group: String) -> PresenceAnnouncement {
        let (users, sequence) = state.withLock { state in
            state.sequence += 1
            return ((state.local[group] ?? [:]).mapValues(\.name), state.sequence)
        }
        announcements.increment()
        return PresenceAnnouncement(replica: replica, group: group, users: users, sequence: sequence)
    }

    /// `datastar-patch-signals {"online":[…]}` for the group's streams.
    func signal(_ group: String) -> StreamBytes {
        let json = "{\"online\":[" + online(group).map(JSONBody.quote).joined(separator: ",") + "]}"
        return StreamBytes(DatastarSSE.patchSignals(json))
    }

    /// The groups this replica has viewers of.
    var localGroups: [String] { state.withLock { Array($0.local.keys) } }

    func ignore() { ignored.increment() }
}

/// `{"replica":"…","group":"…","users":{"<user id>":"<username>",…},"sequence":N}` on
/// `app.presence.<group>`; `sequence` grows with each announcement of the replica.
struct PresenceAnnouncement: Codable, Sendable, Equatable {
    let replica: String
    let group: String
    let users: [String: String]
    let sequence: UInt64

    static let subjectPrefix = "app.presence."

    var subject: String { Self.subjectPrefix + group }

    var payload: Data { (try? JSONEncoder().encode(self)) ?? Data() }

    init(replica: String, group: String, users: [String: String], sequence: UInt64) {
        self.replica = replica
        self.group = group
        self.users = users
        self.sequence = sequence
    }

    /// Nil for anything malformed, oversized or naming a group that is not the subject's.
    init?(subject: String, payload: Data) {
        guard payload.count <= 256 * 1024, subject.hasPrefix(Self.subjectPrefix),
              let decoded = try? JSONDecoder().decode(PresenceAnnouncement.self, from: payload),
              decoded.subject == subject, (try? GroupID(decoded.group)) != nil, decoded.users.count <= 100_000
        else { return nil }
        self = decoded
    }
}

/// Runs presence for a replica: listens to the others, announces its own viewers when they change
/// and every `heartbeat`, forgets replicas not heard for the TTL, and tells the group's local
/// streams each time its online set changes.
public struct PresenceService: Service {
    let presence: Presence
    let connection: NATSConnection
    let fanout: GroupFanout
    let heartbeat: Duration
    let logger: Logger

    public init(presence: Presence, connection: NATSConnection, fanout: GroupFanout, heartbeat: Duration, logger: Logger) {
        self.presence = presence
        self.connection = connection
        self.fanout = fanout
        self.heartbeat = heartbeat
        self.logger = logger
    }

    /// Subscribes; returns once the server has the subscription.
    public func subscribe() async throws -> NATSSubscription {
        let subscription = try await connection.subscribe(PresenceAnnouncement.subjectPrefix + ">")
        try await connection.ping()
        return subscription
    }

    public func run() async throws {
        let subscription = try await subscribe()
        await withGracefulShutdownHandler {
            await run(with: subscription)
        } onGracefulShutdown: {
            Task { await subscription.unsubscribe() }
        }
    }

    /// Listens and beats until the subscription ends or the task is cancelled.
    public func run(with subscription: NATSSubscription) async {
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await listen(subscription) }
            tasks.addTask { await beat() }
            await tasks.next()
            tasks.cancelAll()
        }
    }

    private func listen(_ subscription: NATSSubscription) async {
        for await message in subscription {
            guard let announcement = PresenceAnnouncement(subject: message.subject, payload: message.payload) else {
                presence.ignore()
                continue
            }
            if presence.heard(announcement) { await tell(announcement.group) }
        }
    }

    private func beat() async {
        let expiry = min(heartbeat, .seconds(1))
        var sinceBeat = Duration.zero
        while !Task.isCancelled {
            try? await Task.sleep(for: expiry)
            for group in presence.expire() { await tell(group) }
            sinceBeat += expiry
            if sinceBeat >= heartbeat {
                sinceBeat = .zero
                for group in presence.localGroups { await announce(group) }
            }
        }
    }

    /// A local viewer came or went: announce it and tell the group's local streams.
    public func changed(_ group: String) async {
        await announce(group)
        await tell(group)
    }

    private func announce(_ group: String) async {
        let announcement = presence.announcement(for: group)
        do {
            try await connection.publish(announcement.subject, announcement.payload)
        } catch {
            logger.debug("presence not announced; the next heartbeat repairs it", metadata: ["group_id": "\(group)", "error": "\(error)"])
        }
    }

    private func tell(_ group: String) async {
        guard let id = try? GroupID(group) else { return }
        await fanout.signal(id, presence.signal(group))
    }
}
