import Contracts

/// streamer's settings (DESIGN §2).
public struct StreamerConfiguration: Sendable, Equatable {
    public var shared: SharedSettings
    public var listen: ListenAddress

    public init(environment: [String: String]) throws(SettingsError) {
        shared = try SharedSettings(environment: environment)
        listen = try environment.address("STREAMER_ADDR", default: "127.0.0.1:8081")
    }
}
