import ArgumentParser
import Foundation
import HTTPAPI
import Logging
import NATS
import Postgres
import ServiceSupport
import Streamer

/// `todo streamer`: read API and live SSE streams (DESIGN §5, §6).
struct StreamerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "streamer", abstract: "Run the streamer.")

    func run() async throws {
        TerminationSignal.install() // first: a SIGTERM during startup must not kill the process
        let registry = Observability.bootstrap()
        let logger = Logger(label: "streamer")
        let configuration = try StreamerConfiguration(environment: try DevelopmentKeys.environment(ProcessInfo.processInfo.environment, role: .verifier))
        let nats = try await ServiceRunner.connectNATS(url: configuration.shared.natsURL, name: "streamer", caFile: configuration.shared.natsCAFile, logger: logger)
        let pool = PostgresPool(url: configuration.shared.databaseURL, maxConnections: configuration.databasePoolSize)
        let streamer = await StreamerApplication(
            configuration: configuration, pool: pool, nats: nats,
            checks: [
                ReadinessCheck("nats") { (try? await nats.ping()) != nil },
                ReadinessCheck("postgres") { await pool.isHealthy() },
            ],
            registry: registry, logger: logger)
        let revocationFeed = try await SessionRevocationFeed.start(
            connection: nats, pool: pool, revocations: streamer.revocations,
            pollInterval: .seconds(configuration.revocationPollSeconds), logger: logger)
        logger.info("streamer listening", metadata: ["address": "\(configuration.listen)"])
        try await ServiceRunner.run(
            name: "streamer", services: [("streamer-http", streamer.application(configuration: configuration, logger: logger)),
                                         ("sse-drain", streamer.streamDrain),
                                         ("session-revocations", revocationFeed), ("presence", streamer.presenceService),
                                         ("notifications", streamer.notifications),
                                         ("streamer-internal", streamer.internalApplication(configuration: configuration, logger: logger))],
            logger: logger)
        await nats.drain()
        await pool.shutdown()
    }
}
