import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import Logging
import Metrics
import NATS
import Sharding
import Synchronization

/// `GET /events?group_id=`: one member's live stream of a group (DESIGN §6).
///
/// Order of work, so that nothing is missed and nothing is sent twice: join the group's channel
/// first (live events start queueing in the client's mailbox), then replay from JetStream what the
/// client missed (`Last-Event-ID` is the last group version it saw), then drain the mailbox,
/// skipping versions already sent. A hole in the live sequence (the shared subscription dropped
/// something) is filled from JetStream before the next event goes out. The stream ends when the
/// member is removed, the group is deleted, the client is too slow, or the client goes away
/// (noticed at the next write; heartbeats make sure there is one).
public struct EventStreamRoute: Sendable {
    let store: ReadStore
    let fanout: GroupFanout
    let jetStream: JetStream
    let tokens: AccessTokens
    let configuration: StreamerConfiguration
    let active: Active
    let logger: Logger

    final class Active: Sendable {
        let count = Atomic<Int>(0)
        let draining = Atomic<Bool>(false)
        let gauge = Gauge(label: "sse_connected_clients")
        let replays = Counter(label: "sse_replays_total")
        let replayed = Counter(label: "sse_replayed_events_total")
        let refused = Counter(label: "sse_refused_over_cap_total")
    }

    public init(store: ReadStore, fanout: GroupFanout, jetStream: JetStream, tokens: AccessTokens,
                configuration: StreamerConfiguration, logger: Logger) {
        self.store = store
        self.fanout = fanout
        self.jetStream = jetStream
        self.tokens = tokens
        self.configuration = configuration
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

    public func respond(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let user = try await tokens.authenticate(request)
        let groupText = request.uri.queryParameters.get("group_id") ?? ""
        let group: GroupID
        do { group = try GroupID(groupText) } catch { throw APIError.badRequest("group_id: \(error)") }
        _ = try await store.membership(of: user.userID, in: group.rawValue).requireMember(group.rawValue)
        var lastSeen: Int64?
        if let header = request.headers[.lastEventID], !header.isEmpty {
            guard let version = Int64(header), version >= 0 else { throw APIError.badRequest("Last-Event-ID: must be a group version") }
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
        let userID = user.userID.uuidString.lowercased()
        let channel = context.channel
        let client = StreamClient(userID: userID, capacity: configuration.clientBufferEvents) {
            channel.close(promise: nil)
        }
        do {
            try await fanout.join(group, client)
        } catch {
            release()
            throw APIError.unavailable("live updates are unavailable (message bus)")
        }

        let resumeAfter = lastSeen
        let body = ResponseBody { writer in
            do {
                try await writer.write(ByteBuffer(string: DatastarSSE.retry(milliseconds: DatastarSSE.defaultRetryMilliseconds)))
                var last = resumeAfter
                var ended = false
                if let seen = resumeAfter {
                    (last, ended) = try await replay(group, after: seen, through: nil, userID: userID) { try await writer.write(ByteBuffer(string: $0)) }
                }
                if !ended {
                    loop: for await item in client.items {
                        switch item {
                        case .heartbeat:
                            try await writer.write(Self.ping)
                        case .shutdown(let retry):
                            try await writer.write(ByteBuffer(string: DatastarSSE.retry(milliseconds: retry)))
                            break loop
                        case .event(let rendered):
                            if let seen = last, rendered.groupVersion <= seen { continue }
                            if let seen = last, rendered.groupVersion > seen + 1 {
                                (last, ended) = try await replay(group, after: seen, through: rendered.groupVersion - 1, userID: userID) {
                                    try await writer.write(ByteBuffer(string: $0))
                                }
                                if ended { break loop }
                            }
                            try await writer.write(rendered.bytes)
                            last = rendered.groupVersion
                            if Self.ends(rendered.event, for: userID) { break loop }
                        }
                    }
                }
            } catch {
                // The client went away (write failed) or JetStream failed mid-replay: end the stream.
                logger.debug("stream ended", metadata: ["group_id": "\(group)", "error": "\(error)"])
            }
            client.close()
            await fanout.leave(group, client)
            release()
            if client.wasTooSlow {
                logger.info("slow client disconnected", metadata: ["group_id": "\(group)", "user_id": "\(userID)"])
                return
            }
            try? await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache",
                                               .xAccelBuffering: "no"], body: body)
    }

    /// The heartbeat comment, encoded once (heartbeats come from GroupFanout's one ticker).
    static let ping = ByteBuffer(string: DatastarSSE.comment("ping"))

    private func release() {
        let (remaining, _) = active.count.wrappingSubtract(1, ordering: .relaxed)
        active.gauge.record(remaining)
    }

    /// A member's stream ends with their removal or the group's deletion.
    static func ends(_ event: TodoEvent, for userID: String) -> Bool {
        event.eventType == .groupDeleted || (event.eventType == .memberRemoved && event.memberUserID == userID)
    }

    /// Sends the group's events after `version` (through `limit`, if given) from JetStream, in order.
    /// Returns the last version sent and whether the stream must end.
    private func replay(_ group: GroupID, after version: Int64, through limit: Int64?, userID: String,
                        send: (String) async throws -> Void) async throws -> (Int64, Bool) {
        active.replays.increment()
        // Start near the first missing event when the projection knows where it is.
        let start = (try? await store.streamSequence(of: group.rawValue, version: version)).flatMap { $0 }.map { $0 + 1 } ?? 1
        var last = version
        for try await message in jetStream.replay(stream: Streams.events, filter: GroupSubject.event(group).subject, from: start) {
            let rendered = try RenderedEvent(json: String(decoding: message.payload, as: UTF8.self))
            if rendered.groupVersion <= last { continue }
            if let limit, rendered.groupVersion > limit { break }
            try await send(rendered.text)
            active.replayed.increment()
            last = rendered.groupVersion
            if Self.ends(rendered.event, for: userID) { return (last, true) }
        }
        return (last, false)
    }
}
