/// One dependency `/readyz` checks (NATS reachable, Postgres reachable, …).
public struct ReadinessCheck: Sendable {
    public let name: String
    public let check: @Sendable () async -> Bool

    public init(_ name: String, check: @escaping @Sendable () async -> Bool) {
        self.name = name
        self.check = check
    }
}
