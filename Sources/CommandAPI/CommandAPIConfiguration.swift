import Contracts
import Foundation
import HTTPAPI

/// command-api's settings (DESIGN §2). Only what this service reads lives here.
public struct CommandAPIConfiguration: Sendable, Equatable {
    public var shared: SharedSettings
    public var listen: ListenAddress
    /// `/readyz` and `/metrics` (and `/healthz`), for probes and Prometheus: not routed by the Gateway.
    public var internalListen: ListenAddress
    public var timeouts: HTTPTimeouts
    /// The browser origin allowed by CORS (with its loopback spellings outside production).
    public var uiOrigin: String
    /// `APP_ENV=production` turns development conveniences off (and makes the session cookie `Secure`).
    public var isProduction: Bool
    /// The Ed25519 key the access tokens are signed with (`JWT_SIGNING_KEY`, a private JWK), and
    /// the public keys they are checked with (`JWT_PUBLIC_KEYS`, plus the signing key's own).
    /// Outside production the local run writes a pair into `.runtime/jwt/` (DevelopmentKeys);
    /// production refuses to start without them.
    public var signingKey: TokenSigningKey
    public var verificationKeys: TokenVerificationKeys
    /// Seconds between reads of `revoked_sessions` (besides the announcements on NATS).
    public var revocationPollSeconds: Int
    public var accessTokenSeconds: Int
    public var refreshTokenDays: Int
    /// bcrypt work factor: 12 in production (~250 ms a hash on one core here), lower for tests.
    public var bcryptCost: Int
    /// Addresses and CIDR blocks (`TRUSTED_PROXIES`) whose `X-Forwarded-For` is believed; empty:
    /// the socket's peer is the client.
    public var trustedProxies: [IPRange]
    /// Login/register/refresh attempts per client IP: a burst, then this many a minute.
    public var authPerMinutePerIP: Int
    /// Commands per user: a burst, then this many a second.
    public var commandsPerSecondPerUser: Int
    /// Group imports one user may start per hour (`IMPORTS_PER_HOUR`; a burst of 5): each may hold 50,000 todos.
    public var importsPerHourPerUser: Int
    /// Requests per client IP on every other route: a burst, then this many a second.
    public var requestsPerSecondPerIP: Int
    /// Open HTTP connections before new ones wait in the backlog (keep below `ulimit -n`).
    public var maxConnections: Int
    /// Postgres connections of this process.
    public var databasePoolSize: Int
    /// How long a membership check may be answered from memory (0: always ask Postgres). A change
    /// forgets its group at once on every replica (`MembershipCache`); this only bounds a missed
    /// announcement, and the engine re-checks membership against the group's own events anyway.
    public var membershipCacheMilliseconds: Int
    /// Seconds between housekeeping sweeps (expired idempotency records, old refresh tokens,
    /// published outbox rows): `HOUSEKEEPING_SECONDS`.
    public var housekeepingSeconds: Int

    public init(environment: [String: String]) throws(SettingsError) {
        shared = try SharedSettings(environment: environment)
        listen = try environment.address("COMMAND_API_ADDR", default: "127.0.0.1:8080")
        internalListen = try environment.address("COMMAND_API_INTERNAL_ADDR", default: "127.0.0.1:9080")
        timeouts = try HTTPTimeouts(environment: environment)
        uiOrigin = environment.uiOrigin
        isProduction = environment.isProduction
        signingKey = try environment.tokenSigningKey()
        verificationKeys = try environment.tokenVerificationKeys(adding: signingKey)
        revocationPollSeconds = try environment.integer("REVOCATION_POLL_SECONDS", default: 5, range: 1...300)
        accessTokenSeconds = try environment.integer("ACCESS_TOKEN_SECONDS", default: 900, range: 30...86_400)
        refreshTokenDays = try environment.integer("REFRESH_TOKEN_DAYS", default: 30, range: 1...365)
        bcryptCost = try environment.integer("BCRYPT_COST", default: isProduction ? 12 : 10, range: isProduction ? 10...15 : 4...15)
        trustedProxies = try environment.trustedProxies()
        authPerMinutePerIP = try environment.integer("AUTH_RATE_PER_MINUTE", default: 30, range: 1...1_000_000)
        commandsPerSecondPerUser = try environment.integer("COMMAND_RATE_PER_SECOND", default: 50, range: 1...1_000_000)
        importsPerHourPerUser = try environment.integer("IMPORTS_PER_HOUR", default: 20, range: 1...1_000_000)
        requestsPerSecondPerIP = try environment.integer("REQUEST_RATE_PER_SECOND", default: 500, range: 1...10_000_000)
        maxConnections = try environment.integer("MAX_CONNECTIONS", default: 8_192, range: 16...1_000_000)
        databasePoolSize = try environment.integer("DATABASE_POOL_SIZE", default: 16, range: 1...500)
        membershipCacheMilliseconds = try environment.integer("MEMBERSHIP_CACHE_MS", default: 10_000, range: 0...600_000)
        housekeepingSeconds = try environment.integer("HOUSEKEEPING_SECONDS", default: 300, range: 1...86_400)
    }
}
