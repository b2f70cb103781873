import Foundation
import Logging
import Metrics
import NATS
import Postgres
import ServiceLifecycle
import Synchronization

/// Sessions that ended before their access tokens expired (DESIGN §11): each id is kept until the
/// last token of its session has expired. Checked on every authenticated request; observers (the
/// streamer) end the session's open streams.
public final class RevokedSessions: Sendable {
    private struct State {
        var until: [UUID: Date] = [:]
        var observers: [@Sendable (UUID) -> Void] = []
        var lastPrune = Date.distantPast
    }

    private let state = Mutex(State())
    private let gauge = Gauge(label: "auth_revoked_sessions")

    public init() {}

    public func isRevoked(_ session: UUID, at now: Date = Date()) -> Bool {
        state.withLock { state in
            guard let until = state.until[session] else { return false }
            return until > now
        }
    }

    /// Records a revocation; observers hear of each session once.
    public func revoke(_ session: UUID, until: Date, now: Date = Date()) {
        let observers: [@Sendable (UUID) -> Void] = state.withLock { state in
            if now.timeIntervalSince(state.lastPrune) > 60 {
                state.until = state.until.filter { $0.value > now }
                state.lastPrune = now
            }
            guard until > now else { return [] }
            let known = state.until[session] != nil
            state.until[session] = max(until, state.until[session] ?? until)
            return known ? [] : state.observers
        }
        gauge.record(count)
        for observer in observers { observer(session) }
    }

    /// `body` runs (on the caller's thread) for every session revoked from now on.
    public func observe(_ body: @escaping @Sendable (UUID) -> Void) {
        state.withLock { $0.observers.append(body) }
    }

    public var count: Int { state.withLock { $0.until.count } }
}

/// A revocation as announced on core NATS: `{"session_id":"…","expires_at":<unix seconds>}`.
public struct SessionRevocation: Codable, Sendable, Equatable {
    public let sessionID: UUID
    /// When the session's last access token expires; the revocation is kept until then.
    public let expiresAt: Date

    public init(sessionID: UUID, expiresAt: Date) {
        self.sessionID = sessionID
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case sessionID = "session_id", expiresAt = "expires_at"
    }

    /// Core NATS; no stream captures it. Only command-api may publish here (bus permissions).
    public static let subject = "app.session.revoked"

    public var payload: Data {
        Data("{\"session_id\":\"\(sessionID.lowercasedString)\",\"expires_at\":\(Int64(expiresAt.timeIntervalSince1970.rounded(.up)))}".utf8)
    }

    public init?(payload: Data) {
        struct Wire: Decodable {
            let session_id: String
            let expires_at: Int64
        }
        guard payload.count <= 512, let wire = try? JSONDecoder().decode(Wire.self, from: payload),
              let id = UUID(uuidString: wire.session_id)
        else { return nil }
        self.init(sessionID: id, expiresAt: Date(timeIntervalSince1970: TimeInterval(wire.expires_at)))
    }
}

/// Keeps a process's `RevokedSessions` current: subscribes to the announcements first, then loads
/// what Postgres holds (`revoked_sessions`), so nothing revoked in between is missed; afterwards
/// announcements arrive within milliseconds, and a poll of Postgres every `pollInterval` covers an
/// announcement that was lost (core NATS delivers at most once).
public struct SessionRevocationFeed: Service {
    let connection: NATSConnection
    let pool: PostgresPool
    let revocations: RevokedSessions
    let subscription: NATSSubscription
    let pollInterval: Duration
    /// The newest `revoked_at` of the first load (Postgres's clock): where polling starts.
    let loadedThrough: Date?
    let logger: Logger
    private let ignored = Counter(label: "auth_revocation_announcements_ignored_total")

    /// Subscribes and loads; the returned feed is current, and `run` keeps it so.
    public static func start(connection: NATSConnection, pool: PostgresPool, revocations: RevokedSessions,
                             pollInterval: Duration = .seconds(5), logger: Logger) async throws -> SessionRevocationFeed {
        let subscription = try await connection.subscribe(SessionRevocation.subject)
        try await connection.ping()
        let loaded = try await load(since: nil, from: pool, into: revocations)
        return SessionRevocationFeed(connection: connection, pool: pool, revocations: revocations, subscription: subscription,
                                     pollInterval: pollInterval, loadedThrough: loaded, logger: logger)
    }

    /// Loads the revocations recorded since `since` (all that have not expired when nil).
    static func load(since: Date?, from pool: PostgresPool, into revocations: RevokedSessions) async throws -> Date? {
        let rows = try await pool.withConnection { connection in
            try connection.query("""
                SELECT session_id, expires_at, revoked_at FROM revoked_sessions
                WHERE expires_at > now() AND revoked_at >= $1
                """, since ?? Date(timeIntervalSince1970: 0)).map { row in
                (try row.decode(UUID.self, "session_id"), try row.decode(Date.self, "expires_at"), try row.decode(Date.self, "revoked_at"))
            }
        }
        for (session, expires, _) in rows { revocations.revoke(session, until: expires) }
        return rows.map(\.2).max()
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { tasks in
                tasks.addTask { await listen() }
                tasks.addTask { await poll() }
                await tasks.next()
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            Task { await subscription.unsubscribe() }
        }
    }

    private func listen() async {
        for await message in subscription {
            guard let revocation = SessionRevocation(payload: message.payload) else {
                ignored.increment()
                logger.warning("ignored a malformed session revocation", metadata: ["bytes": "\(message.payload.count)"])
                continue
            }
            revocations.revoke(revocation.sessionID, until: revocation.expiresAt)
        }
    }

    private func poll() async {
        // Rows are read with a margin behind the newest seen (commit order is not revoked_at order).
        var newest = loadedThrough ?? Date(timeIntervalSince1970: 0)
        while !Task.isCancelled {
            try? await Task.sleep(for: pollInterval)
            do {
                if let seen = try await Self.load(since: newest.addingTimeInterval(-30), from: pool, into: revocations) {
                    newest = max(newest, seen)
                }
            } catch {
                logger.warning("revoked sessions could not be read; announcements still apply", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// How command-api tells every replica (and every streamer) that sessions ended.
public protocol SessionRevocationAnnouncing: Sendable {
    func announce(_ revocations: [SessionRevocation]) async
}

/// Announces on core NATS. A lost announcement is found by the feeds' Postgres poll.
public struct NATSSessionRevocationAnnouncer: SessionRevocationAnnouncing {
    let connection: NATSConnection
    let logger: Logger

    public init(connection: NATSConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    public func announce(_ revocations: [SessionRevocation]) async {
        for revocation in revocations {
            do {
                try await connection.publish(SessionRevocation.subject, revocation.payload)
            } catch {
                logger.warning("session revocation not announced; other processes see it at their next poll of Postgres",
                               metadata: ["session_id": "\(revocation.sessionID)", "error": "\(error)"])
            }
        }
    }
}

/// Announces nothing: other processes learn of the revocation at their next poll of Postgres.
/// (A single process, or tests; production uses `NATSSessionRevocationAnnouncer`.)
public struct PollOnlyRevocationAnnouncer: SessionRevocationAnnouncing {
    public init() {}
    public func announce(_ revocations: [SessionRevocation]) async {}
}
