/// Settings shared by every service, read from the environment with the defaults of DESIGN §2.
public struct SharedSettings: Sendable, Equatable {
    public var natsURL: String
    public var databaseURL: String
    /// Replicas of the COMMANDS and EVENTS streams: 1 locally, 3 in a cluster.
    public var streamReplicas: Int
    /// Caps on how far a group and a user can grow (command-api and the engine read the same values).
    public var limits: GrowthLimits

    public static let defaultNATSURL = "nats://127.0.0.1:4222"
    public static let defaultDatabaseURL = "postgres://app:password@127.0.0.1:5432/app?sslmode=disable"

    public init(environment: [String: String]) throws(SettingsError) {
        natsURL = environment["NATS_URL"].nonEmpty ?? Self.defaultNATSURL
        databaseURL = environment["DATABASE_URL"].nonEmpty ?? Self.defaultDatabaseURL
        streamReplicas = try environment.integer("STREAM_REPLICAS", default: 1, range: 1...5)
        limits = try GrowthLimits(environment: environment)
    }
}

/// Bounded growth: what one group or one user may hold. A request past a cap gets a 409 from
/// command-api (and a todo command past it a `limit_reached` rejection from the engine, which
/// holds the authoritative count). Labels per todo are `TextRules.maxLabelsPerTodo`.
public struct GrowthLimits: Sendable, Equatable {
    /// Live (not deleted) todos in one group: `MAX_TODOS_PER_GROUP`.
    public var todosPerGroup = 50_000
    /// Members of one group: `MAX_MEMBERS_PER_GROUP`.
    public var membersPerGroup = 1_000
    /// Groups one user belongs to (created or joined): `MAX_GROUPS_PER_USER`.
    public var groupsPerUser = 500

    public init() {}

    public init(environment: [String: String]) throws(SettingsError) {
        todosPerGroup = try environment.integer("MAX_TODOS_PER_GROUP", default: todosPerGroup, range: 1...10_000_000)
        membersPerGroup = try environment.integer("MAX_MEMBERS_PER_GROUP", default: membersPerGroup, range: 1...1_000_000)
        groupsPerUser = try environment.integer("MAX_GROUPS_PER_USER", default: groupsPerUser, range: 1...1_000_000)
    }
}

public struct SettingsError: Error, Equatable, CustomStringConvertible {
    public let variable: String
    public let problem: String
    public var description: String { "\(variable): \(problem)" }

    public init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }
}

/// A listen address `host:port`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(parsing text: String, variable: String) throws(SettingsError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port), colon != text.startIndex
        else { throw SettingsError(variable: variable, problem: "\(text.debugDescription) is not host:port") }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension Optional where Wrapped == String {
    var nonEmpty: String? {
        guard let self, !self.isEmpty else { return nil }
        return self
    }
}

extension Dictionary where Key == String, Value == String {
    public func integer(_ name: String, default value: Int, range: ClosedRange<Int>) throws(SettingsError) -> Int {
        guard let text = self[name].nonEmpty else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw SettingsError(variable: name, problem: "\(text.debugDescription) is not a whole number in \(range)")
        }
        return number
    }

    /// `JWT_SECRET`, shared by command-api and the streamer: at least 32 bytes. (Outside production
    /// the `todo` binary fills it from `.runtime/jwt-secret` first; see DevelopmentSecret.)
    public func jwtSecret() throws(SettingsError) -> String {
        let secret = self["JWT_SECRET"] ?? ""
        guard secret.utf8.count >= 32 else {
            throw SettingsError(variable: "JWT_SECRET", problem: secret.isEmpty
                ? "is not set (the local run writes one to .runtime/jwt-secret; production must provide one)"
                : "is \(secret.utf8.count) bytes long; at least 32 are required")
        }
        return secret
    }

    /// The browser origin allowed by CORS.
    public var uiOrigin: String { self["UI_ORIGIN"].nonEmpty ?? "http://localhost:8081" }

    /// `APP_ENV=production` turns development conveniences off.
    public var isProduction: Bool { self["APP_ENV"] == "production" }

    public func address(_ name: String, default value: String) throws(SettingsError) -> ListenAddress {
        try ListenAddress(parsing: self[name].nonEmpty ?? value, variable: name)
    }
}
