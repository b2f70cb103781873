import Contracts

/// data-sink's settings (DESIGN §2), from the environment.
public struct DataSinkConfiguration: Sendable, Equatable {
    public var shared: SharedSettings
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    public var healthListen: ListenAddress
    /// The durable consumer on EVENTS that every sink replica shares.
    public var durable = "data-sink"
    /// Most events fetched at once (a full batch when catching up; under live load, what arrived
    /// within `batchWait`). Large batches make catching up cheaper: each transaction writes a
    /// group's offset and a todo's row once, however many of their events it holds (catch-up
    /// measured 19–20k events/s with 2,000, 26k with 10,000).
    public var batchSize = 10_000
    /// Longest wait to fill a batch before writing what arrived.
    public var batchWait: Duration = .milliseconds(50)
    /// How long a fetched event may stay unacknowledged before the server delivers it again: after
    /// a crash, the events the dead sink held (its batch and the prefetched one) wait this long.
    /// A batch being retried (Postgres down) is kept in progress, so this only bounds one write.
    public var ackWait: Duration = .seconds(10)
    /// Transactions a batch is split into, by group, written in parallel (one connection each).
    /// Groups never span two of them, so they take no lock the other needs.
    public var writers = 2
    /// Postgres connections (one per writer; readiness checks share them).
    public var poolSize = 2
    /// How often the trash is purged of todos deleted more than `Trash.retention` ago.
    public var trashPurgeInterval: Duration = .seconds(3600)

    public init(environment: [String: String]) throws(SettingsError) {
        shared = try SharedSettings(environment: environment)
        healthListen = try environment.address("DATA_SINK_HEALTH_ADDR", default: "127.0.0.1:8083")
        if let durable = environment["SINK_DURABLE"], !durable.isEmpty { self.durable = durable }
        batchSize = try environment.integer("SINK_BATCH_SIZE", default: batchSize, range: 1...50_000)
        batchWait = .milliseconds(try environment.integer("SINK_BATCH_WAIT_MS", default: 50, range: 1...10_000))
        writers = try environment.integer("SINK_WRITERS", default: writers, range: 1...16)
        poolSize = try environment.integer("SINK_DB_POOL", default: max(poolSize, writers), range: 1...100)
        ackWait = .seconds(try environment.integer("SINK_ACK_WAIT_SECONDS", default: 10, range: 1...3600))
        trashPurgeInterval = .seconds(try environment.integer("TRASH_PURGE_SECONDS", default: 3600, range: 1...86_400))
    }
}
