import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NATS
import Sharding
import Synchronization

/// `GET /events?group_id=`: one member's live stream of a group (DESIGN §6), served by each
/// connection's `SSEConnectionHandler` (below the router, so the router's middleware does not run:
/// CORS comes from `responseHeaders`, errors are the same JSON shape).
///
/// Order of work, so that nothing is missed and nothing is sent twice: join the group's channel
/// first (live events are held by the stream until its response head is out), then replay from
/// JetStream what the client missed (`Last-Event-ID` is the last group version it saw), then write
/// the held events, skipping versions already sent. A hole in the live sequence (the shared
/// subscription dropped something) is filled from JetStream before the next event goes out. The
/// stream ends when the member is removed, the group is deleted, the client is too slow, or the
/// client goes away. The rules are `LiveStreamState`; the writing is `LiveStream`.
public struct EventStreamRoute: SSEStreamOpener {
    let store: ReadStore
    let fanout: GroupFanout
    let jetStream: JetStream
    let tokens: AccessTokens
    let configuration: StreamerConfiguration
    let cors: CORSPolicy
    let security: SecurityHeaders
    let limits: ReadLimits
    let presence: PresenceService
    let notifications: NotificationFeed
    let active: Active
    let logger: Logger

    final class Active: Sendable {
        let count = Atomic<Int>(0)
        let draining = Atomic<Bool>(false)
        let gauge = Gauge(label: "sse_connected_clients")
        let replays = Counter(label: "sse_replays_total")
        let replayed = Counter(label: "sse_replayed_events_total")
        let refused = Counter(label: "sse_refused_over_cap_total")
        let refusedPerUser = Counter(label: "sse_refused_over_user_cap_total")
        let revokedEnded = Counter(label: "sse_streams_ended_by_revocation_total")
        let slowDropped = Counter(label: "sse_slow_clients_dropped_total")
        /// Open streams by session (to end them when it is revoked) and counts by user (the cap).
        private let owners = Mutex(Owners())

        struct Owners {
            var bySession: [UUID: [ObjectIdentifier: LiveStream]] = [:]
            var perUser: [String: Int] = [:]
        }

        /// Takes one of the user's stream slots; false when they hold `cap` already.
        func reserve(user: String, cap: Int) -> Bool {
            owners.withLock { owners in
                let held = owners.perUser[user, default: 0]
                guard held < cap else { return false }
                owners.perUser[user] = held + 1
                return true
            }
        }

        func unreserve(user: String) {
            owners.withLock { owners in
                let held = owners.perUser[user, default: 0] - 1
                owners.perUser[user] = held > 0 ? held : nil
            }
        }

        func register(_ stream: LiveStream, session: UUID) {
            owners.withLock { $0.bySession[session, default: [:]][ObjectIdentifier(stream)] = stream }
        }

        func unregister(_ stream: LiveStream, session: UUID) {
            owners.withLock { owners in
                owners.bySession[session]?[ObjectIdentifier(stream)] = nil
                if owners.bySession[session]?.isEmpty == true { owners.bySession[session] = nil }
            }
        }

        func streams(of session: UUID) -> [LiveStream] {
            owners.withLock { owners in owners.bySession[session].map { Array($0.values) } ?? [] }
        }

        /// Frees an admitted stream's slot.
        func release() {
            let (remaining, _) = count.wrappingSubtract(1, ordering: .relaxed)
            gauge.record(remaining)
        }
    }

    public init(store: ReadStore, fanout: GroupFanout, jetStream: JetStream, tokens: AccessTokens,
                configuration: StreamerConfiguration, limits: ReadLimits, presence: PresenceService,
                notifications: NotificationFeed, logger: Logger) {
        self.store = store
        self.fanout = fanout
        self.jetStream = jetStream
        self.tokens = tokens
        self.configuration = configuration
        cors = CORSPolicy(uiOrigin: configuration.uiOrigin, development: !configuration.isProduction)
        security = SecurityHeaders(production: configuration.isProduction)
        self.limits = limits
        self.presence = presence
        self.notifications = notifications
        let active = Active()
        self.active = active
        self.logger = logger
        // A revoked session's streams end at once (their reconnect then gets 401).
        tokens.revocations.observe { session in
            for stream in active.streams(of: session) {
                stream.eventLoop.execute {
                    active.revokedEnded.increment()
                    stream.shutdown(retryLine: EventStreamRoute.retryLine)
                }
            }
        }
    }

    public var connectedClients: Int { active.count.load(ordering: .relaxed) }

    /// Graceful shutdown: refuse new streams (503), tell every open one to reconnect elsewhere
    /// (a `retry:` hint) and end it, so the HTTP server can finish.
    public func drain() async {
        active.draining.store(true, ordering: .relaxed)
        let count = await fanout.drain() + notifications.drain()
        logger.info("draining streams for shutdown", metadata: ["streams": "\(count)"])
    }

    /// The stream's CORS headers (the request is served below the router and its middleware).
    func responseHeaders(for request: HTTPRequest) -> HTTPFields {
        var headers = cors.headers(origin: request.headerFields[.origin])
        security.apply(to: &headers, authenticated: SecurityHeaders.isAuthenticated(request.headerFields))
        return headers
    }

    /// Authenticates, checks membership and admission, and joins the group's fan-out; the
    /// connection handler then writes the response head and starts the stream.
    func open(_ request: HTTPRequest, on connection: SSEConnectionHandler) async throws -> LiveStream {
        try limits.check(limits.perIP, limits.clientAddress.clientIP(remote: connection.remoteAddress, headers: request.headerFields))
        let user = try await tokens.authenticate(request.headerFields)
        try limits.check(limits.perUser, user.id)
        // Without a group: the page's stream of the user's own notifications (the bell) only.
        guard let groupText = URI(request.path ?? "").queryParameters.get("group_id") else {
            return try await openBare(user, on: connection)
        }
        let group: GroupID
        do { group = try GroupID(groupText) } catch { throw APIError.badRequest("group_id: \(error)") }
        _ = try await store.membership(of: user.userID, in: group.rawValue).requireMember(group.rawValue)
        var lastSeen: Int64?
        if let header = request.headerFields[.lastEventID], !header.isEmpty {
            // Digits only (as the OpenAPI document says): `Int64` alone would also take "+5".
            guard header.utf8.count <= 18, header.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let version = Int64(header) else {
                throw APIError.badRequest("Last-Event-ID: must be a group version (up to 18 digits)")
            }
            lastSeen = version
        }

        try admit(user)

        let fanout = self.fanout, active = self.active, logger = self.logger, presence = self.presence
        let notifications = self.notifications
        let session = user.sessionID
        let stream = LiveStream(
            connection: connection, userID: user.id, capacity: configuration.clientBufferEvents,
            resumeAfter: lastSeen,
            catchUp: { [self] stream, after, through in catchUp(stream, group, after: after, through: through) },
            onEnd: { stream, end in
                if case .tooSlow = end {
                    active.slowDropped.increment()
                    logger.info("slow client disconnected", metadata: ["group_id": "\(group)", "user_id": "\(stream.userID)"])
                }
                active.unregister(stream, session: session)
                notifications.leave(stream)
                let last = presence.presence.closed(group.rawValue, userID: stream.userID)
                Task {
                    await fanout.leave(group, stream)
                    active.release()
                    active.unreserve(user: stream.userID)
                    if last { await presence.changed(group.rawValue) }
                }
            })
        active.register(stream, session: session)
        // A viewer from before the join, so an end that comes first (onEnd) always finds it.
        let first = presence.presence.opened(group.rawValue, userID: user.id, name: user.username)
        // The bell first, so the stream's end (its onEnd) always finds it registered.
        await notifications.join(stream, bare: false)
        do {
            try await fanout.join(group, stream) // leaves again if it fails
        } catch {
            notifications.leave(stream)
            active.unregister(stream, session: session)
            active.release()
            active.unreserve(user: user.id)
            if presence.presence.closed(group.rawValue, userID: user.id), !first { Task { await presence.changed(group.rawValue) } }
            throw APIError.unavailable("live updates are unavailable (message bus)")
        }
        if first { Task { await presence.changed(group.rawValue) } }
        // Revoked while it was being opened: end it as soon as it starts.
        if tokens.revocations.isRevoked(session) {
            stream.eventLoop.execute { stream.shutdown(retryLine: EventStreamRoute.retryLine) }
        }
        return stream
    }

    /// Takes a stream slot of the user's and of the process's, or refuses (draining, over a cap).
    private func admit(_ user: AuthenticatedUser) throws {
        guard !active.draining.load(ordering: .relaxed) else {
            throw APIError.unavailable("this server is shutting down; reconnect to another")
        }
        guard active.reserve(user: user.id, cap: configuration.maxStreamsPerUser) else {
            active.refusedPerUser.increment()
            throw APIError(.tooManyRequests, "you have \(configuration.maxStreamsPerUser) live streams open on this server; close one first",
                           headers: [.retryAfter: "5"])
        }
        let (_, admitted) = active.count.wrappingAdd(1, ordering: .relaxed)
        guard admitted <= configuration.maxStreams else {
            active.count.wrappingSubtract(1, ordering: .relaxed)
            active.unreserve(user: user.id)
            active.refused.increment()
            throw APIError.unavailable("this server holds its maximum of \(configuration.maxStreams) streams; retry shortly")
        }
        active.gauge.record(admitted)
    }

    /// A stream without a group: the user's bell, on pages other than a board. It carries no
    /// events, so it has nothing to replay; it ends with the session or the server.
    private func openBare(_ user: AuthenticatedUser, on connection: SSEConnectionHandler) async throws -> LiveStream {
        try admit(user)
        let active = self.active, notifications = self.notifications
        let session = user.sessionID
        let stream = LiveStream(
            connection: connection, userID: user.id, capacity: configuration.clientBufferEvents, resumeAfter: nil,
            catchUp: { stream, _, _ in stream.caughtUp(last: 0, ended: false) },
            onEnd: { stream, _ in
                active.unregister(stream, session: session)
                notifications.leave(stream)
                active.release()
                active.unreserve(user: stream.userID)
            })
        active.register(stream, session: session)
        await notifications.join(stream, bare: true)
        if tokens.revocations.isRevoked(session) {
            stream.eventLoop.execute { stream.shutdown(retryLine: EventStreamRoute.retryLine) }
        }
        return stream
    }

    /// Replays the group's events after `after` (through `through`) from JetStream into the stream,
    /// off the event loop, then hands it back to live delivery.
    private func catchUp(_ stream: LiveStream, _ group: GroupID, after: Int64, through: Int64?) {
        Task {
            do {
                let (last, ended) = try await replay(group, after: after, through: through, userID: stream.userID) {
                    try await stream.connection.writeReplayed($0)
                }
                stream.caughtUp(last: last, ended: ended)
            } catch {
                logger.debug("stream ended: replay failed", metadata: ["group_id": "\(group)", "error": "\(error)"])
                stream.catchUpFailed()
            }
        }
    }

    /// The first line of every stream: the client's reconnection delay.
    static let retryLine = StreamBytes(DatastarSSE.retry(milliseconds: DatastarSSE.defaultRetryMilliseconds))

    /// The heartbeat comment, encoded once (heartbeats come from GroupFanout's one ticker).
    static let ping = StreamBytes(DatastarSSE.comment("ping"))

    /// A member's stream ends with their removal or the group's deletion.
    static func ends(_ event: TodoEvent, for userID: String) -> Bool {
        event.eventType == .groupDeleted || (event.eventType == .memberRemoved && event.memberUserID == userID)
    }

    /// Sends the group's events after `version` (through `limit`, if given) from JetStream, in order.
    /// Returns the last version sent and whether the stream must end.
    private func replay(_ group: GroupID, after version: Int64, through limit: Int64?, userID: String,
                        send: (ByteBuffer) async throws -> Void) async throws -> (Int64, Bool) {
        active.replays.increment()
        // Start near the first missing event when the projection knows where it is: at the
        // message holding the last version seen, since a run's later events share its message.
        let start = (try? await store.streamSequence(of: group.rawValue, version: version)).flatMap { $0 } ?? 1
        var last = version
        // No retry while JetStream elects a leader: a failed catch-up ends the stream and the
        // browser reconnects with Last-Event-ID, while a retry would hold one of the connection's
        // few blocking threads for every waiting stream (a whole board's streams at once).
        for try await message in jetStream.replay(stream: Streams.events, filter: GroupSubject.event(group).subject, from: start,
                                                  startRetryWindow: .zero) {
            for rendered in try RenderedEvent.all(in: message.payload) {
                if rendered.groupVersion <= last { continue }
                if let limit, rendered.groupVersion > limit { return (last, false) }
                try await send(rendered.bytes)
                active.replayed.increment()
                last = rendered.groupVersion
                if Self.ends(rendered.event, for: userID) { return (last, true) }
            }
        }
        return (last, false)
    }
}
