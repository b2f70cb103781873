import Foundation
/// Settings shared by every service, read from the environment with the defaults of DESIGN §2.
public struct SharedSettings: Sendable, Equatable {
    public var natsURL: String
    /// `NATS_CA_FILE`: the certificate authorities nats-server's certificate is checked against;
    /// set, the connection requires TLS (Kubernetes).
    public var natsCAFile: String?
    public var databaseURL: String
    /// Replicas of the COMMANDS and EVENTS streams: 1 locally, 3 in a cluster.
    public var streamReplicas: Int
    /// Caps on how far a group and a user can grow (command-api and the engine read the same values).
    public var limits: GrowthLimits

    public static let defaultNATSURL = "nats://127.0.0.1:4222"
    public static let defaultDatabaseURL = "postgres://app:password@127.0.0.1:5432/app?sslmode=disable"

    public init(environment: [String: String]) throws(SettingsError) {
        natsURL = try NATSCredentials.url(environment["NATS_URL"].nonEmpty ?? Self.defaultNATSURL, environment: environment)
        natsCAFile = environment["NATS_CA_FILE"].nonEmpty
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

    /// The browser origin allowed by CORS.
    public var uiOrigin: String { self["UI_ORIGIN"].nonEmpty ?? "http://localhost:8081" }

    /// `APP_ENV=production` turns development conveniences off.
    public var isProduction: Bool { self["APP_ENV"] == "production" }

    public func address(_ name: String, default value: String) throws(SettingsError) -> ListenAddress {
        try ListenAddress(parsing: self[name].nonEmpty ?? value, variable: name)
    }
}

/// Who a process is on the bus (DESIGN §11): nats-server has a user per service, with the
/// subjects it may publish and subscribe to. `NATS_USER` and `NATS_PASSWORD` (or
/// `NATS_PASSWORD_FILE`, e.g. a mounted Secret) are put into the server URL, which the NATS
/// wrapper never logs unredacted. A URL that already names a user is used as it is.
public enum NATSCredentials {
    public static func url(_ url: String, environment: [String: String]) throws(SettingsError) -> String {
        guard let user = environment["NATS_USER"].nonEmpty else { return url }
        var password = environment["NATS_PASSWORD"].nonEmpty
        if password == nil, let path = environment["NATS_PASSWORD_FILE"].nonEmpty {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw SettingsError(variable: "NATS_PASSWORD_FILE", problem: "\(path) cannot be read")
            }
            password = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let password, !password.isEmpty else {
            throw SettingsError(variable: "NATS_PASSWORD", problem: "NATS_USER is set, but neither NATS_PASSWORD nor NATS_PASSWORD_FILE")
        }
        return try with(user: user, password: password, in: url)
    }

    /// `url` (one or more comma-separated servers) with `user:password@` in each server that names no user.
    public static func with(user: String, password: String, in url: String) throws(SettingsError) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        guard let encodedUser = user.addingPercentEncoding(withAllowedCharacters: allowed),
              let encodedPassword = password.addingPercentEncoding(withAllowedCharacters: allowed)
        else { throw SettingsError(variable: "NATS_USER", problem: "cannot be put into a URL") }
        return url.split(separator: ",").map { server in
            let server = server.trimmingCharacters(in: .whitespaces)
            guard let scheme = server.range(of: "://"), !server[scheme.upperBound...].contains("@") else { return server }
            return server[..<scheme.upperBound] + "\(encodedUser):\(encodedPassword)@" + server[scheme.upperBound...]
        }.joined(separator: ",")
    }
}
