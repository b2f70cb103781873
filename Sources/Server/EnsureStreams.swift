import ArgumentParser
import Contracts
import Foundation
import Logging
import NATS
import ServiceSupport

/// `todo ensure-streams`: creates or reconciles the COMMANDS and EVENTS streams (DESIGN §3).
struct EnsureStreams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or update the COMMANDS and EVENTS streams.")

    @Option(help: "NATS URL (default: $NATS_URL or the local default).")
    var natsURL: String?

    @Option(help: "Stream replicas: 1 locally, 3 in a cluster (default: $STREAM_REPLICAS, else 1, as every service reads it).")
    var replicas: Int?

    func run() async throws {
        Observability.bootstrap()
        let logger = Logger(label: "ensure-streams")
        let shared = try SharedSettings(environment: ProcessInfo.processInfo.environment)
        var options = NATSConnection.Options(url: natsURL ?? shared.natsURL, name: "todo ensure-streams")
        options.caFile = shared.natsCAFile
        let connection = try await NATSConnection.connect(options)
        for config in PipelineStreams.all(replicas: replicas ?? shared.streamReplicas) {
            let outcome = try await connection.jetStream.ensureStream(config)
            logger.info("stream reconciled", metadata: ["stream": "\(config.name)", "outcome": "\(outcome)"])
        }
        await connection.drain()
    }
}

