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

    /// - Parameters:
    ///   - publisher: how commands reach JetStream (a `JetStreamCommandPublisher` in production).
    ///   - announcer: how the other replicas hear of a membership change (`NATSMembershipChangeAnnouncer`).
    public init(configuration: CommandAPIConfiguration, pool: PostgresPool, publisher: any CommandPublishing,
                announcer: (any MembershipChangeAnnouncing)? = nil,
                checks: [ReadinessCheck], registry: PrometheusCollectorRegistry, logger: Logger) async {
        let tokens = await AccessTokens(secret: configuration.jwtSecret, lifetime: .seconds(configuration.accessTokenSeconds))
        passwords = PasswordHasher(cost: configuration.bcryptCost)
        let auth = AuthService(accounts: AccountStore(pool: pool, refreshTokenDays: configuration.refreshTokenDays),
                               passwords: passwords, tokens: tokens)
        relay = OutboxRelay(pool: pool, publisher: publisher, logger: logger)
        var store: any CommandIntakeStore = PostgresCommandIntakeStore(pool: pool)
        membershipCache = configuration.membershipCacheMilliseconds > 0
            ? MembershipCache(ttl: .milliseconds(configuration.membershipCacheMilliseconds)) : nil
        if let membershipCache { store = CachedCommandIntakeStore(base: store, cache: membershipCache) }
        let intake = CommandIntake(store: store, publisher: publisher, logger: logger, limits: configuration.shared.limits)
        let limits = CommandAPILimits(configuration: configuration)

        let router = Router(context: APIRequestContext.self)
        router.add(middleware: CORSMiddleware(uiOrigin: configuration.uiOrigin, development: !configuration.isProduction))
        router.add(middleware: MetricsMiddleware())
        let allowedMethods = AllowedMethods()
        router.add(middleware: ErrorMiddleware(allowedMethods: allowedMethods))
        router.add(middleware: PerIPLimitMiddleware(limits: limits))
        OperationalRoutes.add(to: router, checks: checks, registry: registry)
        OpenAPIDocument.commandAPI.addRoute(to: router)
        CommandAPIRoutes.addAuthRoutes(to: router, auth: auth, limits: limits)
        CommandAPIRoutes.addGroupRoutes(to: router, groups: GroupStore(pool: pool, limits: configuration.shared.limits), relay: relay, tokens: tokens,
                                        membershipCache: membershipCache, announcer: announcer)
        CommandAPIRoutes.addCommandRoutes(to: router, intake: intake, tokens: tokens, limits: limits)
        allowedMethods.load(router.routes)
        self.router = router
    }

    /// The HTTP server, its connections capped below the open-files limit.
    public func application(configuration: CommandAPIConfiguration, logger: Logger) -> some ApplicationProtocol {
        HTTPServer.application(router: router, listen: configuration.listen, serverName: "command-api",
                               maxConnections: configuration.maxConnections, logger: logger)
    }
}
