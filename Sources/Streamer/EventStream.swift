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
    let active: Active
    let logger: Logger

    final class Active: Sendable {
        let count = Atomic<Int>(0)
        let draining = Atomic<Bool>(false)
        let gauge = Gauge(label: "sse_connected_clients")
        let replays = Counter(label: "sse_replays_total")
        let replayed = Counter(label: "sse_replayed_events_total")
        let refused = Counter(label: "sse_refused_over_cap_total")
        let slowDropped = Counter(label: "sse_slow_clients_dropped_total")

        /// Frees an admitted stream's slot.
        func release() {
            let (remaining, _) = count.wrappingSubtract(1, ordering: .relaxed)
            gauge.record(remaining)
        }
    }

    public init(store: ReadStore, fanout: GroupFanout, jetStream: JetStream, tokens: AccessTokens,
                configuration: StreamerConfiguration, logger: Logger) {
        self.store = store
        self.fanout = fanout
        self.jetStream = jetStream
        self.tokens = tokens
        self.configuration = configuration
        cors = CORSPolicy(uiOrigin: configuration.uiOrigin, development: !configuration.isProduction)
        active = Active()
        self.logger = logger
    }

    public var connectedClients: Int { active.count.load(ordering: .relaxed) }

    /// Graceful shutdown: refuse new streams (503), tell every open one to reconnect elsewhere
    /// (a `retry:` hint) and end it, so the HTTP server can finish.
    public func drain() async {
        active.draining.store(true, ordering: .relaxed)
        let count = await fanout.drain()
        logger.info("draining streams for shutdown", metadata: ["streams": "\(count)"])
    }

    /// The stream's CORS headers (the request is served below the router and its middleware).
    func responseHeaders(for request: HTTPRequest) -> HTTPFields {
        cors.headers(origin: request.headerFields[.origin])
    }

    /// Authenticates, checks membership and admission, and joins the group's fan-out; the
    /// connection handler then writes the response head and starts the stream.
    func open(_ request: HTTPRequest, on connection: SSEConnectionHandler) async throws -> LiveStream {
        let user = try await tokens.authenticate(request.headerFields)
        let groupText = URI(request.path ?? "").queryParameters.get("group_id") ?? ""
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

        guard !active.draining.load(ordering: .relaxed) else {
            throw APIError.unavailable("this server is shutting down; reconnect to another")
        }
        let (_, admitted) = active.count.wrappingAdd(1, ordering: .relaxed)
        guard admitted <= configuration.maxStreams else {
            active.count.wrappingSubtract(1, ordering: .relaxed)
            active.refused.increment()
            throw APIError.unavailable("this server holds its maximum of \(configuration.maxStreams) streams; retry shortly")
        }
        active.gauge.record(admitted)

        let fanout = self.fanout, active = self.active, logger = self.logger
        let stream = LiveStream(
            connection: connection, userID: user.id, capacity: configuration.clientBufferEvents,
            resumeAfter: lastSeen,
            catchUp: { [self] stream, after, through in catchUp(stream, group, after: after, through: through) },
            onEnd: { stream, end in
                if case .tooSlow = end {
                    active.slowDropped.increment()
                    logger.info("slow client disconnected", metadata: ["group_id": "\(group)", "user_id": "\(stream.userID)"])
                }
                Task {
                    await fanout.leave(group, stream)
                    active.release()
                }
            })
        do {
            try await fanout.join(group, stream) // leaves again if it fails
        } catch {
            active.release()
            throw APIError.unavailable("live updates are unavailable (message bus)")
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
        for try await message in jetStream.replay(stream: Streams.events, filter: GroupSubject.event(group).subject, from: start) {
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
