import Contracts

/// data-sink's settings (DESIGN §2).
public struct DataSinkConfiguration: Sendable, Equatable {
    public var shared: SharedSettings
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    public var healthListen: ListenAddress

    public init(environment: [String: String]) throws(SettingsError) {
        shared = try SharedSettings(environment: environment)
        healthListen = try environment.address("DATA_SINK_HEALTH_ADDR", default: "127.0.0.1:8083")
    }
}
