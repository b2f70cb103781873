import Foundation
import Migrations
import Postgres
import Testing

@Suite("Migrations against a real Postgres")
struct MigrationIntegrationTests {
    /// A pool whose connections work in a schema of their own, so the test starts from nothing.
    func scratchSchema() async throws -> (PostgresPool, String) {
        let schema = TestInfrastructure.unique("mig")
        let admin = try await TestInfrastructure.pool(maxConnections: 1)
        try await admin.query("CREATE SCHEMA \(schema)")
        await admin.shutdown()
        let separator = TestInfrastructure.databaseURL.contains("?") ? "&" : "?"
        let url = TestInfrastructure.databaseURL + separator + "options=-c%20search_path%3D\(schema)"
        return (try await TestInfrastructure.pool(maxConnections: 4, url: url), schema)
    }

    @Test func applyingTwiceChangesNothing() async throws {
        let (pool, schema) = try await scratchSchema()
        let migrator = Migrator(pool: pool, migrations: try Migration.bundled())
        let first = try await migrator.migrate()
        #expect(first == migrator.migrations.map(\.version))
        #expect(first.count >= 2)
        let tables = try await pool.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name", schema
        ).map { try $0.decode(String.self, "table_name") }
        for table in ["users", "refresh_tokens", "groups", "group_members", "command_outbox", "idempotency_keys",
                      "todo_events", "todos", "group_projection_offsets", "schema_migrations"] {
            #expect(tables.contains(table), "\(table) exists")
        }
        let indexes = try await pool.query("SELECT indexname FROM pg_indexes WHERE schemaname = $1", schema)
            .map { try $0.decode(String.self, "indexname") }
        #expect(indexes.contains("todos_board_idx"))
        #expect(!indexes.contains("todo_events_command_idx"), "a command's outcome is found by event id (0004)")
        let payloadType = try await pool.query(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'todo_events' AND column_name = 'payload'",
            schema)
        #expect(try payloadType.first?.decode(String.self, "data_type") == "json", "the payload is kept as the bus message's text")

        #expect(try await migrator.migrate() == [])
        #expect(try await migrator.appliedVersions() == first)
        try await pool.query("DROP SCHEMA \(schema) CASCADE")
        await pool.shutdown()
    }

    @Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
        let (pool, schema) = try await scratchSchema()
        let migrations = try Migration.bundled()
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 {
                group.addTask { try await Migrator(pool: pool, migrations: migrations).migrate() }
            }
            var all: [[Int]] = []
            for try await versions in group { all.append(versions) }
            return all
        }
        #expect(applied.flatMap { $0 }.sorted() == migrations.map(\.version), "each version applied by exactly one migrator")
        try await pool.query("DROP SCHEMA \(schema) CASCADE")
        await pool.shutdown()
    }

    @Test func aChangedMigrationIsRefused() async throws {
        let (pool, schema) = try await scratchSchema()
        let original = [Migration(version: 1, name: "t", sql: "CREATE TABLE t (id int)")]
        try await Migrator(pool: pool, migrations: original).migrate()
        let edited = [Migration(version: 1, name: "t", sql: "CREATE TABLE t (id bigint)")]
        await #expect(throws: MigrationError.changedAfterApply(version: 1, name: "t")) {
            try await Migrator(pool: pool, migrations: edited).migrate()
        }
        // A failing migration leaves nothing half-applied.
        let broken = original + [Migration(version: 2, name: "broken", sql: "CREATE TABLE u (id int); SELECT no_such_function()")]
        await #expect(throws: PostgresError.self) { try await Migrator(pool: pool, migrations: broken).migrate() }
        #expect(try await pool.query("SELECT to_regclass('u') IS NULL AS absent")[0].decode(Bool.self, "absent"))
        #expect(try await Migrator(pool: pool, migrations: original).appliedVersions() == [1])
        try await pool.query("DROP SCHEMA \(schema) CASCADE")
        await pool.shutdown()
    }
}
