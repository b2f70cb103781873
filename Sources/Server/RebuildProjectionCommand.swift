import ArgumentParser
import DataSink
import Foundation
import Logging
import Postgres
import ServiceSupport

/// `todo rebuild-projection`: replays EVENTS into fresh tables and swaps them in (DESIGN §4).
struct RebuildProjectionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild-projection",
        abstract: "Rebuild todo_events, todos and group_projection_offsets from the EVENTS stream, then swap them in.")

    @Flag(help: "Only build the tables (with the suffix _rebuild); do not swap them in.")
    var buildOnly = false

    func run() async throws {
        Observability.bootstrap()
        let logger = Logger(label: "rebuild-projection")
        let environment = ProcessInfo.processInfo.environment
        let configuration = try DataSinkConfiguration(environment: environment)
        let nats = try await ServiceRunner.connectNATS(url: configuration.shared.natsURL, name: "rebuild-projection", caFile: configuration.shared.natsCAFile, logger: logger)
        let pool = PostgresPool(url: configuration.shared.databaseURL, maxConnections: 2)
        let rebuilder = ProjectionRebuilder(pool: pool, jetStream: nats.jetStream, logger: logger)
        do {
            let progress = buildOnly
                ? try await rebuilder.build(into: ProjectionTables.live.suffixed("_rebuild"))
                : try await rebuilder.rebuildAndSwap()
            logger.info("rebuild finished", metadata: [
                "events": "\(progress.events)", "skipped": "\(progress.skipped)", "failed": "\(progress.failed)", "stream.sequence": "\(progress.lastSequence)"])
        } catch {
            logger.error("rebuild failed", metadata: ["error": "\(error)"])
            await nats.drain()
            await pool.shutdown()
            throw ExitCode.failure
        }
        await nats.drain()
        await pool.shutdown()
    }
}
