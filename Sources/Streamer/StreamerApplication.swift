import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdCore
import Logging
import NATS
import Postgres
import Prometheus
import ServiceLifecycle
import ServiceSupport
import Sharding

/// The streamer assembled: read API, SSE, operational routes.
public struct StreamerApplication {
    public let router: Router<APIRequestContext>
    public let events: EventStreamRoute
    public let fanout: GroupFanout
    /// Sessions that ended: their requests get 401 and their open streams end. Keep it current
    /// with a `SessionRevocationFeed` beside the server.
    public let revocations: RevokedSessions
    /// Who views which group, across replicas; run `presenceService` beside the server.
    public let presence: Presence
    public let presenceService: PresenceService
    /// The bell's live counts; run it beside the server.
    public let notifications: NotificationFeed
    let checks: [ReadinessCheck]
    let registry: PrometheusCollectorRegistry

    public init(configuration: StreamerConfiguration, pool: PostgresPool, nats: NATSConnection,
                checks: [ReadinessCheck], registry: PrometheusCollectorRegistry, logger: Logger) async {
        revocations = RevokedSessions()
        self.checks = checks
        self.registry = registry
        let limits = ReadLimits(configuration: configuration)
        let tokens = await AccessTokens(verificationKeys: configuration.verificationKeys, revocations: revocations)
        let store = ReadStore(pool: pool, standbyGrace: .milliseconds(configuration.standbyGraceMilliseconds))
        fanout = GroupFanout(connection: nats, heartbeat: .seconds(configuration.heartbeatSeconds), logger: logger)
        presence = Presence(ttl: .seconds(configuration.presenceTTLSeconds))
        presenceService = PresenceService(presence: presence, connection: nats, fanout: fanout,
                                          heartbeat: .seconds(configuration.presenceHeartbeatSeconds), logger: logger)
        notifications = NotificationFeed(store: store, connection: nats, heartbeat: .seconds(configuration.heartbeatSeconds), logger: logger)
        events = EventStreamRoute(store: store, fanout: fanout, jetStream: nats.jetStream, tokens: tokens,
                                  configuration: configuration, limits: limits, presence: presenceService,
                                  notifications: notifications, logger: logger)
        router = Self.router(configuration: configuration, store: store, tokens: tokens, limits: limits, presence: presence)
    }

    /// Every route but `GET /events`, which `SSEConnectionHandler` serves in the connection's
    /// pipeline (`SSEConnectionHandler.path`).
    static func router(configuration: StreamerConfiguration, store: ReadStore, tokens: AccessTokens,
                       limits: ReadLimits, presence: Presence) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: SecurityHeadersMiddleware(SecurityHeaders(production: configuration.isProduction)))
        router.add(middleware: CanonicalPathMiddleware())
        router.add(middleware: CORSMiddleware(uiOrigin: configuration.uiOrigin, development: !configuration.isProduction))
        router.add(middleware: MetricsMiddleware())
        let allowedMethods = AllowedMethods()
        router.add(middleware: ErrorMiddleware(allowedMethods: allowedMethods))
        router.add(middleware: ReadLimitMiddleware(limits: limits, tokens: tokens))
        OperationalRoutes.addLiveness(to: router)
        OpenAPIDocument.streamer.addRoute(to: router)
        StreamerRoutes.addReadRoutes(to: router, store: store, tokens: tokens)
        StreamerRoutes.addPresenceRoute(to: router, store: store, tokens: tokens, presence: presence)
        StreamerRoutes.addNotificationRoute(to: router, store: store, tokens: tokens)
        UIRoutes.add(to: router, store: store, tokens: tokens, commandAPI: configuration.commandAPIURL)
        allowedMethods.load(router.routes)
        allowedMethods.add(.get, SSEConnectionHandler.path)
        return router
    }

    /// Ends the SSE streams when graceful shutdown begins. Run it after the HTTP service in one
    /// ServiceGroup: shutdown runs in reverse order, so streams end first and the server then
    /// finishes its (now short) responses.
    public var streamDrain: some Service { StreamDrain(events: events) }

    public func application(configuration: StreamerConfiguration, logger: Logger) -> some ApplicationProtocol {
        HTTPServer.application(router: router, listen: configuration.listen, serverName: "streamer",
                               maxConnections: configuration.maxConnections, server: server(configuration), logger: logger)
    }

    /// HTTP/1 with `GET /events` served in each connection's pipeline (`SSEConnectionHandler`);
    /// tests that run the router on a live server pass this as its `server`.
    public func server(_ configuration: StreamerConfiguration) -> HTTPServerBuilder {
        let events = self.events
        return HTTPServer.http1(timeouts: configuration.timeouts) { [SSEConnectionHandler(opener: events)] }
    }

    /// `/healthz`, `/readyz` and `/metrics` on the internal address (`STREAMER_INTERNAL_ADDR`).
    public func internalApplication(configuration: StreamerConfiguration, logger: Logger) -> some ApplicationProtocol {
        OperationalRoutes.application(host: configuration.internalListen.host, port: configuration.internalListen.port,
                                      serverName: "streamer-internal", checks: checks, registry: registry, logger: logger)
    }
}

struct StreamDrain: Service {
    let events: EventStreamRoute

    func run() async throws {
        try? await gracefulShutdown()
        await events.drain()
    }
}

/// The read API of DESIGN §5: membership is checked on every read.
public enum StreamerRoutes {
    public static func addReadRoutes(to router: Router<APIRequestContext>, store: ReadStore, tokens: AccessTokens) {
        router.get("/api/v1/groups") { request, _ in
            let user = try await tokens.authenticate(request)
            return try JSONBody.response(GroupList(groups: try await store.groups(of: user.userID)))
        }
        router.get("/api/v1/search") { request, _ in
            let user = try await tokens.authenticate(request)
            let parameters = request.uri.queryParameters
            guard let text = parameters.get("q") else { throw APIError.badRequest("q: is required") }
            guard text.unicodeScalars.count <= SearchQuery.maxCharacters else {
                throw APIError.badRequest("q: at most \(SearchQuery.maxCharacters) characters")
            }
            let limit = try integer(parameters.get("limit"), name: "limit", default: 20, range: 1...50)
            let results = try await store.search(SearchQuery(text), user: user.userID, limit: limit)
            return try JSONBody.response(SearchResults(results: results))
        }
        router.get("/api/v1/groups/:id/members") { request, context in
            let user = try await tokens.authenticate(request)
            let group = try groupID(context.parameters.get("id"))
            _ = try await store.membership(of: user.userID, in: group.rawValue).requireMember(group.rawValue)
            return try JSONBody.response(MemberList(groupID: group.rawValue, members: try await store.members(of: group.rawValue)))
        }
        router.get("/api/v1/todos") { request, _ in
            let user = try await tokens.authenticate(request)
            let query = request.uri.queryParameters
            let group = try groupID(query.get("group_id"))
            let limit = try integer(query.get("limit"), name: "limit", default: 50, range: 1...200)
            let deleted: Bool
            switch query.get("deleted") {
            case nil, "false": deleted = false
            case "true": deleted = true
            default: throw APIError.badRequest("deleted: must be true or false")
            }
            let due = try DueRange.parse(from: query.get("due_from"), to: query.get("due_to"))
            if deleted, due != nil { throw APIError.badRequest("deleted: the trash has no due range (due_from, due_to)") }
            let cursorText = query.get("cursor").flatMap { $0.isEmpty ? nil : $0 }
            func badCursor() -> APIError { APIError.badRequest("cursor: is not a cursor this server issued") }
            let minVersion = try query.get("min_version").flatMap { text -> Int64? in
                guard !text.isEmpty else { return nil }
                guard text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let version = Int64(text) else {
                    throw APIError.badRequest("min_version: must be a group version (up to 18 digits)")
                }
                return version
            }
            _ = try await store.membership(of: user.userID, in: group.rawValue).requireMember(group.rawValue)
            // Read-your-writes: a client that has seen version N live (the stream is ahead of the
            // projection, and a replica may be behind the primary) waits, up to 2 s, for it here.
            if let minVersion { await store.waitForProjection(of: group.rawValue, atLeast: minVersion, within: .seconds(2)) }
            if let due {
                let cursor = try cursorText.map { text in try DueCursor(encoded: text) ?? { throw badCursor() }() }
                return try JSONBody.response(try await store.todos(of: group.rawValue, due: due, limit: limit, after: cursor))
            }
            if deleted {
                let cursor = try cursorText.map { text in try TrashCursor(encoded: text) ?? { throw badCursor() }() }
                return try JSONBody.response(try await store.trash(of: group.rawValue, limit: limit, after: cursor))
            }
            let cursor = try cursorText.map { text in try TodoCursor(encoded: text) ?? { throw badCursor() }() }
            return try JSONBody.response(try await store.todos(of: group.rawValue, limit: limit, after: cursor))
        }
        router.get("/api/v1/groups/:id/events") { request, context in
            let user = try await tokens.authenticate(request)
            let group = try groupID(context.parameters.get("id"))
            let query = request.uri.queryParameters
            let after = Int64(try integer(query.get("after"), name: "after", default: 0, range: 0...Int.max))
            let limit = try integer(query.get("limit"), name: "limit", default: 100, range: 1...1000)
            _ = try await store.membership(of: user.userID, in: group.rawValue).requireMember(group.rawValue)
            let events = try await store.events(of: group.rawValue, after: after, limit: limit)
            // The stored JSON is the bus's event JSON; it is passed through as is.
            var body = "{\"group_id\":\(JSONBody.quote(group.rawValue)),\"events\":[" + events.map(\.json).joined(separator: ",") + "]"
            body += ",\"next_after\":\(events.last?.version ?? after)}"
            return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: body)))
        }
    }

    /// `GET /api/v1/groups/{id}/presence`: who views the group now (members only).
    public static func addPresenceRoute(to router: Router<APIRequestContext>, store: ReadStore, tokens: AccessTokens, presence: Presence) {
        router.get("/api/v1/groups/:id/presence") { request, context in
            let user = try await tokens.authenticate(request)
            let group = try groupID(context.parameters.get("id"))
            _ = try await store.membership(of: user.userID, in: group.rawValue).requireMember(group.rawValue)
            return try JSONBody.response(PresenceList(online: presence.online(group.rawValue)))
        }
        router.get("/api/v1/groups/:id/export") { request, context in
            let user = try await tokens.authenticate(request)
            let group = try groupID(context.parameters.get("id"))
            let format: GroupExport.Format
            switch request.uri.queryParameters.get("format") {
            case nil, "json": format = .json
            case "csv": format = .csv
            default: throw APIError.badRequest("format: must be json or csv")
            }
            let role = try await store.membership(of: user.userID, in: group.rawValue).requireMember(group.rawValue)
            guard GroupPolicy.allows(role, .exportGroup) else { throw APIError.forbidden("only an owner or an admin may export the group") }
            guard let summary = try await store.group(group.rawValue, of: user.userID) else {
                throw APIError.notFound("group \(group.rawValue) does not exist")
            }
            return GroupExport(store: store).response(for: summary, format: format)
        }
    }

    /// `GET /api/v1/notifications?limit=&before=` (DESIGN §9): the caller's own, newest first.
    public static func addNotificationRoute(to router: Router<APIRequestContext>, store: ReadStore, tokens: AccessTokens) {
        router.get("/api/v1/notifications") { request, _ in
            let user = try await tokens.authenticate(request)
            let parameters = request.uri.queryParameters
            let limit = try integer(parameters.get("limit"), name: "limit", default: 20, range: 1...100)
            var before: Int64?
            if let text = parameters.get("before"), !text.isEmpty {
                guard let id = Int64(text), id > 0, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    throw APIError.badRequest("before: must be a notification id (a positive whole number)")
                }
                before = id
            }
            return try JSONBody.response(try await store.notifications(of: user.id, limit: limit, before: before))
        }
        // `GET /api/v1/groups/{id}/reminders`: the caller's own pending reminders there (members only).
        router.get("/api/v1/groups/:id/reminders") { request, context in
            let user = try await tokens.authenticate(request)
            let group = try groupID(context.parameters.get("id"))
            _ = try await store.membership(of: user.userID, in: group.rawValue).requireMember(group.rawValue)
            return try JSONBody.response(OwnReminderList(reminders: try await store.reminders(of: user.id, in: group.rawValue)))
        }
    }

    struct PresenceList: Encodable {
        let online: [String]
    }

    struct SearchResults: Encodable {
        let results: [SearchResult]
    }

    struct GroupList: Encodable {
        let groups: [ReadStore.GroupSummary]
    }

    struct MemberList: Encodable {
        let groupID: String
        let members: [ReadStore.Member]

        enum CodingKeys: String, CodingKey {
            case groupID = "group_id", members
        }
    }

    static func groupID(_ text: String?) throws -> GroupID {
        guard let text, !text.isEmpty else { throw APIError.badRequest("group_id: is required") }
        do { return try GroupID(text) } catch { throw APIError.badRequest("group_id: \(error)") }
    }

    static func integer(_ text: String?, name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text, !text.isEmpty else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.badRequest("\(name): must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }
}

/// The streamer's read limits (DESIGN §11): per client IP on every request but `/healthz`, and per
/// user on every authenticated one, as command-api limits its writes. The SSE route checks both
/// when a stream opens.
public struct ReadLimits: Sendable {
    public let perIP: RateLimiter
    public let perUser: RateLimiter
    public let clientAddress: ClientAddressResolver

    public init(configuration: StreamerConfiguration) {
        perIP = RateLimiter(ratePerSecond: Double(configuration.readsPerSecondPerIP), burst: Double(configuration.readsPerSecondPerIP) * 2)
        perUser = RateLimiter(ratePerSecond: Double(configuration.readsPerSecondPerUser),
                              burst: Double(configuration.readsPerSecondPerUser) * 2)
        clientAddress = ClientAddressResolver(trustedProxies: configuration.trustedProxies)
    }

    func check(_ limiter: RateLimiter, _ key: String) throws {
        if case .limited(let seconds) = limiter.take(key) { throw APIError.tooManyRequests(retryAfterSeconds: seconds) }
    }
}

struct ReadLimitMiddleware: RouterMiddleware {
    let limits: ReadLimits
    let tokens: AccessTokens

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        guard request.uri.path != "/healthz" else { return try await next(request, context) }
        try limits.check(limits.perIP, limits.clientAddress.clientIP(remote: context.remoteAddress, headers: request.headers))
        // The user's bucket, when the token is good (a bad one gets its 401 from the route).
        if let token = request.headers.bearerToken, let user = await tokens.verify(token) {
            try limits.check(limits.perUser, user.id)
        }
        return try await next(request, context)
    }
}
