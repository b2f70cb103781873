import Contracts
import Foundation

/// streamer's settings (DESIGN §2, §6).
public struct StreamerConfiguration: Sendable, Equatable {
    public var shared: SharedSettings
    public var listen: ListenAddress
    public var uiOrigin: String
    public var isProduction: Bool
    /// HS256 key shared with command-api (see CommandAPIConfiguration).
    public var jwtSecret: String
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
    /// command-api's base URL as the browser reaches it; "" when both sit behind one origin (the
    /// Gateway in production splits paths between them).
    public var commandAPIURL: String

    public init(environment: [String: String]) throws(SettingsError) {
        shared = try SharedSettings(environment: environment)
        listen = try environment.address("STREAMER_ADDR", default: "127.0.0.1:8081")
        uiOrigin = environment.uiOrigin
        isProduction = environment.isProduction
        jwtSecret = try environment.jwtSecret()
        maxStreams = try environment.integer("SSE_MAX_STREAMS", default: 15_000, range: 1...1_000_000)
        maxConnections = try environment.integer("MAX_CONNECTIONS", default: 16_000, range: 16...1_000_000)
        clientBufferEvents = try environment.integer("SSE_CLIENT_BUFFER", default: 256, range: 1...100_000)
        heartbeatSeconds = try environment.integer("SSE_HEARTBEAT_SECONDS", default: 15, range: 1...15)
        databasePoolSize = try environment.integer("DATABASE_POOL_SIZE", default: 16, range: 1...500)
        commandAPIURL = environment["COMMAND_API_URL"] ?? (isProduction ? "" : "http://127.0.0.1:8080")
    }
}
