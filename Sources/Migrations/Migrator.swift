import Logging
import Postgres

/// Applies migrations in order, each in its own transaction, under a Postgres advisory lock so
/// that several processes starting at once apply each migration exactly once. Running it again
/// changes nothing.
public struct Migrator: Sendable {
    /// Arbitrary, fixed: the advisory lock key every migrator of this schema agrees on.
    static let lockKey: Int64 = 0x746F_646F_6D69_6772 // "todomigr"

    public let pool: PostgresPool
    public let migrations: [Migration]
    public let logger: Logger

    public init(pool: PostgresPool, migrations: [Migration], logger: Logger = Logger(label: "migrate")) {
        self.pool = pool
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies what is missing; returns the versions applied by this call.
    @discardableResult
    public func migrate() async throws -> [Int] {
        let migrations = self.migrations
        let logger = self.logger
        return try await pool.withConnection { connection in
            // Session-level lock: held across the per-migration transactions, released below
            // (or by the server if this process dies).
            try connection.query("SELECT pg_advisory_lock($1)", Self.lockKey)
            defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", Self.lockKey) }
            try connection.execute("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version     integer     PRIMARY KEY,
                    name        text        NOT NULL,
                    checksum    text        NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now()
                )
                """)
            var applied: [Int: String] = [:]
            for row in try connection.query("SELECT version, checksum FROM schema_migrations") {
                applied[try row.decode(Int.self, "version")] = try row.decode(String.self, "checksum")
            }
            var newlyApplied: [Int] = []
            for migration in migrations {
                if let checksum = applied[migration.version] {
                    guard checksum == migration.checksum else {
                        throw MigrationError.changedAfterApply(version: migration.version, name: migration.name)
                    }
                    continue
                }
                try connection.transaction { connection in
                    try connection.execute(migration.sql)
                    try connection.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                         migration.version, migration.name, migration.checksum)
                }
                logger.info("applied migration", metadata: ["migration.version": "\(migration.version)",
                                                            "migration.name": "\(migration.name)"])
                newlyApplied.append(migration.version)
            }
            return newlyApplied
        }
    }

    /// Versions recorded as applied.
    public func appliedVersions() async throws -> [Int] {
        let exists = try await pool.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
        guard try exists.first?.decode(Bool.self, "present") == true else { return [] }
        return try await pool.query("SELECT version FROM schema_migrations ORDER BY version").map { try $0.decode(Int.self, "version") }
    }
}
