import ArgumentParser
import Foundation
import Logging
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
        let url = databaseURL ?? Environment.databaseURL
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

enum Environment {
    static var values: [String: String] { ProcessInfo.processInfo.environment }
    static var databaseURL: String {
        values["DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "postgres://app:password@127.0.0.1:5432/app?sslmode=disable"
    }
    static var natsURL: String {
        values["NATS_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "nats://127.0.0.1:4222"
    }
}
