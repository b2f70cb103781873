import ArgumentParser
import DomainEngine
import Foundation
import Logging
import ServiceSupport

/// `todo domain-engine`: decides commands into events (DESIGN §3).
struct DomainEngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "domain-engine", abstract: "Run the domain engine.")

    func run() async throws {
        TerminationSignal.install() // first: a SIGTERM during startup must not kill the process
        let registry = Observability.bootstrap()
        let logger = Logger(label: "domain-engine")
        let configuration = try DomainEngineConfiguration(environment: ProcessInfo.processInfo.environment)
        let nats = try await ServiceRunner.connectNATS(url: configuration.shared.natsURL, name: "domain-engine", caFile: configuration.shared.natsCAFile, logger: logger)
        let engine = DomainEngineService(configuration: configuration, connection: nats, logger: logger)
        try await ServiceRunner.run(
            name: "domain-engine", worker: engine, health: configuration.healthListen,
            checks: [ReadinessCheck("nats") { (try? await nats.ping()) != nil }],
            registry: registry, logger: logger)
        await nats.drain()
    }
}
