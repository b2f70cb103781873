import ArgumentParser
import DataSink
import Foundation
import Logging
import Postgres
import ServiceSupport

/// `todo data-sink`: projects events into Postgres (DESIGN §4).
struct DataSinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data-sink", abstract: "Run the data sink.")

    func run() async throws {
        TerminationSignal.install() // first: a SIGTERM during startup must not kill the process
        let registry = Observability.bootstrap()
        let logger = Logger(label: "data-sink")
        let configuration = try DataSinkConfiguration(environment: ProcessInfo.processInfo.environment)
        let nats = try await ServiceRunner.connectNATS(url: configuration.shared.natsURL, name: "data-sink", caFile: configuration.shared.natsCAFile, logger: logger)
        let pool = PostgresPool(url: configuration.shared.databaseURL, maxConnections: configuration.poolSize + 1)
        let sink = DataSinkService(configuration: configuration, connection: nats, pool: pool, logger: logger)
        try await ServiceRunner.run(
            name: "data-sink", worker: sink, health: configuration.healthListen,
            checks: [
                ReadinessCheck("nats") { (try? await nats.ping()) != nil },
                ReadinessCheck("postgres") { await pool.isHealthy() },
            ],
            registry: registry, logger: logger)
        await nats.drain()
        await pool.shutdown()
    }
}
