import Contracts
import Hummingbird
import HummingbirdCore
import Logging

/// The HTTP server of a public-facing service (command-api, streamer): its listen address, a
/// listen backlog above Hummingbird's default (256) for bursts of connects, and connections capped
/// below the open-files limit (libdispatch aborts the process when it cannot open a file).
public enum HTTPServer {
    public static func application(router: Router<APIRequestContext>, listen: ListenAddress, serverName: String,
                                   maxConnections: Int, server: HTTPServerBuilder = .http1(),
                                   logger: Logger) -> some ApplicationProtocol {
        Application(
            router: router, server: server,
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: serverName, backlog: 1024,
                                 availableConnectionsDelegate: MaximumAvailableConnections(maxConnections)),
            logger: logger)
    }
}
