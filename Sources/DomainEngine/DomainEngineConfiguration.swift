import Contracts

/// domain-engine's settings (DESIGN §2), from the environment.
public struct DomainEngineConfiguration: Sendable, Equatable {
    public var shared: SharedSettings
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    public var healthListen: ListenAddress
    /// The durable consumer on COMMANDS that every engine replica shares.
    public var durable = "domain-engine"
    /// Messages per fetch. Under live load a fetch returns what is there; when catching up, a
    /// larger batch holds more groups to work on at once (catch-up: ~18.4k cmd/s with 512 and
    /// 512 groups at a time, ~20.9k with 2,048 and 2,048, in alternating runs).
    public var batchSize = 2048
    /// Workers: groups worked on at the same time (each group strictly in order, a run at a
    /// time). Work is mostly waiting for JetStream acknowledgements, so many groups in flight keep
    /// it busy.
    public var groupConcurrency = 2048
    /// Commands one process holds at most, queued per group ahead of deciding: how far fetching
    /// runs ahead of a group with a backlog, so that other groups behind it are reached.
    public var maxHeld = 25_000
    /// How long a group waits, without progress, for an earlier command that another replica
    /// holds, before deciding it from the log itself (that replica may have died).
    public var handoffWait: Duration = .milliseconds(500)
    /// Group states kept in memory; others are rebuilt from their events on demand.
    public var cacheCapacity = 10_000
    /// Unacknowledged time before the server redelivers a command held by an engine that died.
    /// (Its group does not wait for it: the next command of the group decides it from the log.)
    public var ackWait: Duration = .seconds(10)
    /// Deliveries before a command that keeps failing is dead-lettered.
    public var maxDeliver = 10

    public init(environment: [String: String]) throws(SettingsError) {
        shared = try SharedSettings(environment: environment)
        healthListen = try environment.address("DOMAIN_ENGINE_HEALTH_ADDR", default: "127.0.0.1:8082")
        if let durable = environment["ENGINE_DURABLE"], !durable.isEmpty { self.durable = durable }
        batchSize = try environment.integer("ENGINE_BATCH_SIZE", default: batchSize, range: 1...10_000)
        groupConcurrency = try environment.integer("ENGINE_GROUP_CONCURRENCY", default: groupConcurrency, range: 1...10_000)
        cacheCapacity = try environment.integer("ENGINE_CACHE_GROUPS", default: cacheCapacity, range: 1...10_000_000)
        maxHeld = try environment.integer("ENGINE_MAX_HELD", default: maxHeld, range: 1...1_000_000)
        handoffWait = .milliseconds(try environment.integer("ENGINE_HANDOFF_WAIT_MS", default: 500, range: 1...60_000))
        maxDeliver = try environment.integer("ENGINE_MAX_DELIVER", default: maxDeliver, range: 1...1000)
        ackWait = .seconds(try environment.integer("ENGINE_ACK_WAIT_SECONDS", default: 10, range: 1...3600))
    }
}
