import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdCore
import Logging
import NATS
import Postgres
import Prometheus
import ServiceSupport

/// command-api assembled: routes, middleware, and the outbox relay that runs beside it.
public struct CommandAPIApplication {
    public let router: Router<APIRequestContext>
    public let relay: OutboxRelay
    public let passwords: PasswordHasher
    /// Positive membership answers (nil when `MEMBERSHIP_CACHE_MS` is 0); run a
    /// `MembershipChangeListener` on it beside the server when there are several replicas.
    public let membershipCache: MembershipCache?
    /// Sessions that ended; keep it current with a `SessionRevocationFeed` beside the server.
    public let revocations: RevokedSessions
    let checks: [ReadinessCheck]
    let registry: PrometheusCollectorRegistry

    /// - Parameters:
    ///   - publisher: how commands reach JetStream (a `JetStreamCommandPublisher` in production).
    ///   - announcer: how the other replicas hear of a membership change (`NATSMembershipChangeAnnouncer`).
    ///   - sessionAnnouncer: how every verifying process hears that a session ended
    ///     (`NATSSessionRevocationAnnouncer`; nil: only this process and, at their next poll of
    ///     Postgres, the others).
    ///   - notificationSignaller: how a user's open streams hear that they read notifications
    ///     (`NATSNotificationSignaller`; nil: their bells follow at their next signal or reconnect).
    public init(configuration: CommandAPIConfiguration, pool: PostgresPool, publisher: any CommandPublishing,
                announcer: (any MembershipChangeAnnouncing)? = nil, sessionAnnouncer: (any SessionRevocationAnnouncing)? = nil,
                notificationSignaller: (any NotificationSignalling)? = nil,
                checks: [ReadinessCheck], registry: PrometheusCollectorRegistry, logger: Logger) async {
        revocations = RevokedSessions()
        self.checks = checks
        self.registry = registry
        let tokens = await AccessTokens(verificationKeys: configuration.verificationKeys, revocations: revocations)
        let issuer = await AccessTokenIssuer(signingKey: configuration.signingKey, lifetime: .seconds(configuration.accessTokenSeconds))
        passwords = PasswordHasher(cost: configuration.bcryptCost)
        let accounts = AccountStore(pool: pool, refreshTokenDays: configuration.refreshTokenDays,
                                    accessTokenSeconds: configuration.accessTokenSeconds)
        let auth = AuthService(accounts: accounts, passwords: passwords, tokens: issuer,
                               announcer: sessionAnnouncer ?? PollOnlyRevocationAnnouncer(), revocations: revocations)
        relay = OutboxRelay(pool: pool, publisher: publisher, logger: logger)
        var store: any CommandIntakeStore = PostgresCommandIntakeStore(pool: pool)
        membershipCache = configuration.membershipCacheMilliseconds > 0
            ? MembershipCache(ttl: .milliseconds(configuration.membershipCacheMilliseconds)) : nil
        if let membershipCache { store = CachedCommandIntakeStore(base: store, cache: membershipCache) }
        let intake = CommandIntake(store: store, publisher: publisher, logger: logger, limits: configuration.shared.limits)
        let limits = CommandAPILimits(configuration: configuration)

        let router = Router(context: APIRequestContext.self)
        router.add(middleware: SecurityHeadersMiddleware(SecurityHeaders(production: configuration.isProduction)))
        router.add(middleware: CanonicalPathMiddleware())
        router.add(middleware: CORSMiddleware(uiOrigin: configuration.uiOrigin, development: !configuration.isProduction))
        router.add(middleware: MetricsMiddleware())
        let allowedMethods = AllowedMethods()
        router.add(middleware: ErrorMiddleware(allowedMethods: allowedMethods))
        router.add(middleware: PerIPLimitMiddleware(limits: limits))
        OperationalRoutes.addLiveness(to: router)
        OpenAPIDocument.commandAPI.addRoute(to: router)
        let cookie = SessionCookie(secure: configuration.isProduction, refreshTokenDays: configuration.refreshTokenDays,
                                   cors: CORSPolicy(uiOrigin: configuration.uiOrigin, development: !configuration.isProduction))
        CommandAPIRoutes.addAuthRoutes(to: router, auth: auth, tokens: tokens, limits: limits, cookie: cookie)
        CommandAPIRoutes.addGroupRoutes(to: router, groups: GroupStore(pool: pool, limits: configuration.shared.limits), relay: relay, tokens: tokens,
                                        limits: limits, membershipCache: membershipCache, announcer: announcer)
        CommandAPIRoutes.addProfileRoutes(to: router, profiles: ProfileStore(pool: pool), tokens: tokens)
        CommandAPIRoutes.addCommandRoutes(to: router, intake: intake, tokens: tokens, limits: limits)
        CommandAPIRoutes.addNotificationRoutes(to: router, reads: NotificationReads(pool: pool),
                                               signaller: notificationSignaller ?? NoNotificationSignals(), tokens: tokens, limits: limits)
        allowedMethods.load(router.routes)
        self.router = router
    }

    /// The HTTP server, its connections capped below the open-files limit.
    public func application(configuration: CommandAPIConfiguration, logger: Logger) -> some ApplicationProtocol {
        HTTPServer.application(router: router, listen: configuration.listen, serverName: "command-api",
                               maxConnections: configuration.maxConnections, server: server(configuration), logger: logger)
    }

    public func server(_ configuration: CommandAPIConfiguration) -> HTTPServerBuilder {
        HTTPServer.http1(timeouts: configuration.timeouts)
    }

    /// `/healthz`, `/readyz` and `/metrics` on the internal address (`COMMAND_API_INTERNAL_ADDR`).
    public func internalApplication(configuration: CommandAPIConfiguration, logger: Logger) -> some ApplicationProtocol {
        OperationalRoutes.application(host: configuration.internalListen.host, port: configuration.internalListen.port,
                                      serverName: "command-api-internal", checks: checks, registry: registry, logger: logger)
    }
}
