import ArgumentParser
import Foundation
import Logging
import Postgres
import Scheduler
import ServiceSupport

/// `todo scheduler`: the due index, reminders fired on time, notifications (DESIGN §9).
struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scheduler", abstract: "Run the reminder scheduler.")

    func run() async throws {
        TerminationSignal.install() // first: a SIGTERM during startup must not kill the process
        let registry = Observability.bootstrap()
        let logger = Logger(label: "scheduler")
        let configuration = try SchedulerConfiguration(environment: ProcessInfo.processInfo.environment)
        let nats = try await ServiceRunner.connectNATS(url: configuration.shared.natsURL, name: "scheduler", caFile: configuration.shared.natsCAFile, logger: logger)
        let pool = PostgresPool(url: configuration.shared.databaseURL, maxConnections: configuration.poolSize)
        let scheduler = SchedulerService(configuration: configuration, connection: nats, pool: pool, logger: logger)
        try await ServiceRunner.run(
            name: "scheduler", worker: scheduler, health: configuration.healthListen,
            checks: [
                ReadinessCheck("nats") { (try? await nats.ping()) != nil },
                ReadinessCheck("postgres") { await pool.isHealthy() },
            ],
            registry: registry, logger: logger)
        await nats.drain()
        await pool.shutdown()
    }
}
