import Contracts

/// The scheduler's settings (DESIGN §9), from the environment.
public struct SchedulerConfiguration: Sendable, Equatable {
    public var shared: SharedSettings
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    public var healthListen: ListenAddress
    /// The durable consumer on EVENTS that every scheduler replica shares (the due index).
    public var durable = "scheduler"
    /// Most events read at once.
    public var batchSize = 1000
    /// How often the due index is looked at when nothing woke the firing loop sooner.
    public var pollInterval: Duration = .milliseconds(200)
    /// Most reminders claimed and fired at once.
    public var claimBatch = 2000
    /// How long a claimed reminder is left to its replica: its `reminder.fired` normally ends the
    /// row well before; if none came (the command was refused, a replica died), it is fired again.
    public var claimLease: Duration = .seconds(30)
    /// A reminder fired this long after its time is marked `late` (the scheduler was down).
    public var lateAfter: Duration = .seconds(5)
    /// Ended reminders' rows are kept this long (the version guard against redelivered events).
    public var tombstoneRetention: Duration = .seconds(3600)
    /// Postgres connections (the index writer and the firing loop).
    public var poolSize = 3

    public init(environment: [String: String]) throws(SettingsError) {
        shared = try SharedSettings(environment: environment)
        healthListen = try environment.address("SCHEDULER_HEALTH_ADDR", default: "127.0.0.1:8084")
        if let durable = environment["SCHEDULER_DURABLE"], !durable.isEmpty { self.durable = durable }
        batchSize = try environment.integer("SCHEDULER_BATCH_SIZE", default: batchSize, range: 1...10_000)
        pollInterval = .milliseconds(try environment.integer("SCHEDULER_POLL_MS", default: 200, range: 10...10_000))
        claimBatch = try environment.integer("SCHEDULER_CLAIM_BATCH", default: claimBatch, range: 1...10_000)
        claimLease = .seconds(try environment.integer("SCHEDULER_CLAIM_LEASE_SECONDS", default: 30, range: 2...3600))
        lateAfter = .milliseconds(try environment.integer("SCHEDULER_LATE_AFTER_MS", default: 5000, range: 100...3_600_000))
        poolSize = try environment.integer("SCHEDULER_DB_POOL", default: poolSize, range: 2...50)
    }
}
