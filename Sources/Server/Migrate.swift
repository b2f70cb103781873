import ArgumentParser
import Foundation
import Logging
import Contracts
import Migrations
import Postgres
import ServiceSupport

/// `todo migrate`: applies the bundled SQL migrations under an advisory lock.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply database migrations (safe to run any number of times).")

    @Option(help: "Postgres URL (default: $DATABASE_URL or the local default).")
    var databaseURL: String?

    func run() async throws {
        Observability.bootstrap()
        let logger = Logger(label: "migrate")
        let url = try databaseURL ?? SharedSettings(environment: ProcessInfo.processInfo.environment).databaseURL
        let pool = PostgresPool(url: url, maxConnections: 1)
        do {
            let applied = try await Migrator(pool: pool, migrations: try Migration.bundled(), logger: logger).migrate()
            logger.info("migrations up to date", metadata: ["migrations.applied": "\(applied)"])
            await pool.shutdown()
        } catch {
            await pool.shutdown()
            logger.error("migration failed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}
