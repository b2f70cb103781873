import Contracts
import Foundation
import HTTPAPI

/// streamer's settings (DESIGN §2, §6).
public struct StreamerConfiguration: Sendable, Equatable {
    public var shared: SharedSettings
    public var listen: ListenAddress
    /// `/readyz` and `/metrics` (and `/healthz`), for probes and Prometheus: not routed by the Gateway.
    public var internalListen: ListenAddress
    public var timeouts: HTTPTimeouts
    /// Addresses and CIDR blocks (`TRUSTED_PROXIES`) whose `X-Forwarded-For` is believed.
    public var trustedProxies: [IPRange]
    /// Reads (API, fragments, stream opens) per client IP a second, after a burst of twice as many.
    public var readsPerSecondPerIP: Int
    /// Reads per user a second, after a burst of twice as many.
    public var readsPerSecondPerUser: Int
    public var uiOrigin: String
    public var isProduction: Bool
    /// The public keys access tokens are checked with (`JWT_PUBLIC_KEYS`): the streamer cannot sign.
    public var verificationKeys: TokenVerificationKeys
    /// Seconds between reads of `revoked_sessions` (besides the announcements on NATS).
    public var revocationPollSeconds: Int
    /// Open streams one user may hold in this process (`SSE_MAX_STREAMS_PER_USER`); past it, 429.
    public var maxStreamsPerUser: Int
    /// Seconds between a replica's presence announcements (`PRESENCE_HEARTBEAT_SECONDS`, 15) and
    /// how long another replica's list is kept without one (`PRESENCE_TTL_SECONDS`, 45: a crashed
    /// replica's viewers are gone within it).
    public var presenceHeartbeatSeconds: Int
    public var presenceTTLSeconds: Int
    /// SSE streams this process holds at most; past it, `GET /events` answers 503. Kept well below
    /// `ulimit -n` (20,000 here): every stream is a socket, and libdispatch aborts the process when
    /// it cannot open a file.
    public var maxStreams: Int
    /// HTTP connections at most (streams plus API requests), also below the open-files limit.
    public var maxConnections: Int
    /// Events a client may have waiting; a client further behind is disconnected (it reconnects
    /// with Last-Event-ID and catches up from JetStream).
    public var clientBufferEvents: Int
    public var heartbeatSeconds: Int
    public var databasePoolSize: Int
    /// STANDBY_READ_GRACE_MS: how long a "not a member" / "no such group" read on a standby is
    /// checked again before it is answered (see `ReadStore.standbyGrace`).
    public var standbyGraceMilliseconds: Int
    /// command-api's base URL as the browser reaches it; "" when both sit behind one origin (the
    /// Gateway in production splits paths between them).
    public var commandAPIURL: String

    public init(environment: [String: String]) throws(SettingsError) {
        shared = try SharedSettings(environment: environment)
        listen = try environment.address("STREAMER_ADDR", default: "127.0.0.1:8081")
        internalListen = try environment.address("STREAMER_INTERNAL_ADDR", default: "127.0.0.1:9081")
        timeouts = try HTTPTimeouts(environment: environment)
        trustedProxies = try environment.trustedProxies()
        readsPerSecondPerIP = try environment.integer("READ_RATE_PER_SECOND", default: 200, range: 1...10_000_000)
        readsPerSecondPerUser = try environment.integer("READ_RATE_PER_SECOND_PER_USER", default: 50, range: 1...10_000_000)
        uiOrigin = environment.uiOrigin
        isProduction = environment.isProduction
        verificationKeys = try environment.tokenVerificationKeys()
        revocationPollSeconds = try environment.integer("REVOCATION_POLL_SECONDS", default: 5, range: 1...300)
        maxStreamsPerUser = try environment.integer("SSE_MAX_STREAMS_PER_USER", default: 32, range: 1...1_000_000)
        presenceHeartbeatSeconds = try environment.integer("PRESENCE_HEARTBEAT_SECONDS", default: 15, range: 1...300)
        presenceTTLSeconds = try environment.integer("PRESENCE_TTL_SECONDS", default: 45, range: 2...3600)
        guard presenceTTLSeconds > presenceHeartbeatSeconds else {
            throw SettingsError(variable: "PRESENCE_TTL_SECONDS", problem: "must be longer than PRESENCE_HEARTBEAT_SECONDS (\(presenceHeartbeatSeconds))")
        }
        maxStreams = try environment.integer("SSE_MAX_STREAMS", default: 15_000, range: 1...1_000_000)
        maxConnections = try environment.integer("MAX_CONNECTIONS", default: 16_000, range: 16...1_000_000)
        clientBufferEvents = try environment.integer("SSE_CLIENT_BUFFER", default: 256, range: 1...100_000)
        heartbeatSeconds = try environment.integer("SSE_HEARTBEAT_SECONDS", default: 15, range: 1...15)
        databasePoolSize = try environment.integer("DATABASE_POOL_SIZE", default: 16, range: 1...500)
        standbyGraceMilliseconds = try environment.integer("STANDBY_READ_GRACE_MS", default: 1000, range: 0...10_000)
        commandAPIURL = environment["COMMAND_API_URL"] ?? (isProduction ? "" : "http://127.0.0.1:8080")
    }
}
