import Contracts

/// command-api's settings (DESIGN §2). Only what this service reads lives here.
public struct CommandAPIConfiguration: Sendable, Equatable {
    public var shared: SharedSettings
    public var listen: ListenAddress
    /// The browser origin allowed by CORS.
    public var uiOrigin: String

    public init(environment: [String: String]) throws(SettingsError) {
        shared = try SharedSettings(environment: environment)
        listen = try environment.address("COMMAND_API_ADDR", default: "127.0.0.1:8080")
        uiOrigin = environment["UI_ORIGIN"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://localhost:8081"
    }
}
