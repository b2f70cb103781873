import ArgumentParser
import CommandAPI
import Foundation
import HTTPAPI
import Logging
import NATS
import Postgres
import ServiceLifecycle
import ServiceSupport

/// `todo command-api`: accounts, groups and command intake over HTTP (DESIGN §5).
struct CommandAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "command-api", abstract: "Run command-api.")

    func run() async throws {
        TerminationSignal.install() // first: a SIGTERM during startup must not kill the process
        let registry = Observability.bootstrap()
        let logger = Logger(label: "command-api")
        let configuration = try CommandAPIConfiguration(environment: try DevelopmentKeys.environment(ProcessInfo.processInfo.environment, role: .signer))
        var options = NATSConnection.Options(url: configuration.shared.natsURL, name: "command-api")
        options.publishAckTimeout = .seconds(3)
        options.caFile = configuration.shared.natsCAFile
        let nats = try await ServiceRunner.connectNATS(options: options, logger: logger)
        let pool = PostgresPool(url: configuration.shared.databaseURL, maxConnections: configuration.databasePoolSize)
        let api = await CommandAPIApplication(
            configuration: configuration, pool: pool, publisher: JetStreamCommandPublisher(connection: nats),
            announcer: NATSMembershipChangeAnnouncer(connection: nats, logger: logger),
            sessionAnnouncer: NATSSessionRevocationAnnouncer(connection: nats, logger: logger),
            notificationSignaller: NATSNotificationSignaller(connection: nats, logger: logger),
            checks: [
                ReadinessCheck("nats") { (try? await nats.ping()) != nil },
                ReadinessCheck("postgres") { await pool.isHealthy() },
            ],
            registry: registry, logger: logger)
        let revocationFeed = try await SessionRevocationFeed.start(
            connection: nats, pool: pool, revocations: api.revocations,
            pollInterval: .seconds(configuration.revocationPollSeconds), logger: logger)
        logger.info("command-api listening", metadata: ["address": "\(configuration.listen)"])
        var services: [(name: String, service: any Service)] = [
            ("outbox-relay", api.relay), ("command-api-http", api.application(configuration: configuration, logger: logger)),
            ("housekeeping", Housekeeping(pool: pool, interval: .seconds(configuration.housekeepingSeconds), logger: logger)),
            ("session-revocations", revocationFeed),
            ("command-api-internal", api.internalApplication(configuration: configuration, logger: logger)),
        ]
        if let cache = api.membershipCache {
            services.append(("membership-changes", MembershipChangeListener(connection: nats, cache: cache)))
        }
        try await ServiceRunner.run(name: "command-api", services: services, logger: logger)
        await nats.drain()
        await pool.shutdown()
        await api.passwords.shutdown()
    }
}
