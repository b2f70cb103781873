import Contracts
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The HTTP server of a public-facing service (command-api, streamer): its listen address, a
/// listen backlog above Hummingbird's default (256) for bursts of connects, connections capped
/// below the open-files limit (libdispatch aborts the process when it cannot open a file), and
/// the request-head and idle timeouts (`RequestHeadTimeout`).
public enum HTTPServer {
    public static func application(router: Router<APIRequestContext>, listen: ListenAddress, serverName: String,
                                   maxConnections: Int, server: HTTPServerBuilder, logger: Logger) -> some ApplicationProtocol {
        Application(
            router: router, server: server,
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: serverName, backlog: 1024,
                                 availableConnectionsDelegate: MaximumAvailableConnections(maxConnections)),
            logger: logger)
    }

    /// HTTP/1 with the timeouts first, then `handlers` (the streamer's SSE connection handler).
    public static func http1(timeouts: HTTPTimeouts,
                             handlers: @escaping @Sendable () -> [any RemovableChannelHandler] = { [] }) -> HTTPServerBuilder {
        .http1(configuration: .init(additionalChannelHandlers: [
            RequestHeadTimeout(headerTimeout: .seconds(Int64(timeouts.headerSeconds)), idleTimeout: .seconds(Int64(timeouts.idleSeconds)))
        ] + handlers()))
    }
}

/// `HTTP_HEADER_TIMEOUT_SECONDS` (default 10): a new connection's first request head must be in
/// within it. `HTTP_IDLE_TIMEOUT_SECONDS` (default 30): a keep-alive connection's next one.
public struct HTTPTimeouts: Sendable, Equatable {
    public var headerSeconds: Int
    public var idleSeconds: Int

    public init(environment: [String: String]) throws(SettingsError) {
        headerSeconds = try environment.integer("HTTP_HEADER_TIMEOUT_SECONDS", default: 10, range: 1...300)
        idleSeconds = try environment.integer("HTTP_IDLE_TIMEOUT_SECONDS", default: 30, range: 1...3600)
    }
}
