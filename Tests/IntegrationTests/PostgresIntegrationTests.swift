import Foundation
import Postgres
import Synchronization
import Testing

@Suite("Postgres through the wrapper, against a real server")
struct PostgresIntegrationTests {
    @Test func twoHundredConcurrentQueriesOverTenConnections() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 10)
        let appName = TestInfrastructure.unique("pool")
        let peak = Peak()
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<200 {
                group.addTask {
                    try await pool.withConnection { connection in
                        try connection.query("SET application_name = '\(appName)'")
                        let backends = try connection.query(
                            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1", appName)
                        let n = try backends[0].decode(Int.self, "n")
                        peak.value.withLock { $0 = max($0, n) }
                        let row = try connection.query("SELECT $1::int * 2 AS doubled, pg_sleep(0.005)", index)
                        return try row[0].decode(Int.self, "doubled")
                    }
                }
            }
            var collected: [Int] = []
            for try await value in group { collected.append(value) }
            return collected
        }
        #expect(results.sorted() == (0..<200).map { $0 * 2 })
        #expect(pool.openConnections <= 10)
        #expect(peak.value.withLock { $0 } <= 10, "never more than 10 server connections at once")
        #expect(peak.value.withLock { $0 } > 1, "queries did run in parallel")
        await pool.shutdown()
    }

    @Test func copyOfOneHundredThousandRows() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 2)
        let table = TestInfrastructure.unique("copy")
        try await pool.query("CREATE TABLE \(table) (id bigint PRIMARY KEY, name text, note text, tags text[], at timestamptz)")
        let at = Date(timeIntervalSince1970: 1_795_000_000.5)
        let rows: [[any PostgresEncodable]] = (0..<100_000).map { index in
            [Int64(index), "name \(index)", index % 10 == 0 ? Optional<String>.none : "tab\there\nnewline\\slash \(index)",
             ["a", "b \(index % 3)"], at]
        }
        let copied = try await pool.copy(into: table, columns: ["id", "name", "note", "tags", "at"], rows: rows)
        #expect(copied == 100_000)
        let summary = try await pool.query("SELECT count(*)::int AS n, sum(id)::bigint AS total, count(note)::int AS notes FROM \(table)")
        #expect(try summary[0].decode(Int.self, "n") == 100_000)
        #expect(try summary[0].decode(Int64.self, "total") == Int64(99_999 * 100_000 / 2))
        #expect(try summary[0].decode(Int.self, "notes") == 90_000)
        let one = try await pool.query("SELECT note, tags, at FROM \(table) WHERE id = $1", 7)
        #expect(try one[0].decode(String?.self, "note") == "tab\there\nnewline\\slash 7")
        #expect(try one[0].decode([String].self, "tags") == ["a", "b 1"])
        #expect(try one[0].decode(Date.self, "at") == at)
        #expect(try await pool.query("SELECT note FROM \(table) WHERE id = 10")[0].decode(String?.self, "note") == nil)

        // A bad row aborts the whole COPY: nothing of it is kept.
        await #expect(throws: PostgresError.self) {
            try await pool.copy(into: table, columns: ["id", "name"], rows: [[Int64(200_000), "ok"], [Int64(1), "duplicate key"]])
        }
        #expect(try await pool.query("SELECT count(*)::int AS n FROM \(table) WHERE id = 200000")[0].decode(Int.self, "n") == 0)
        // The connection is usable afterwards.
        #expect(try await pool.query("SELECT 1 AS one")[0].decode(Int.self, "one") == 1)
        try await pool.query("DROP TABLE \(table)")
        await pool.shutdown()
    }

    @Test func binaryCopyWritesEveryFieldTypeExactly() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 1)
        let table = TestInfrastructure.unique("copybin")
        try await pool.query("""
            CREATE TABLE \(table) (id bigint PRIMARY KEY, small integer, name text, note text, tags text[], at timestamptz,
                                  x double precision, flag boolean)
            """)
        struct Row { var id: Int64; var note: String?; var tags: [String]?; var at: Date?; var x: Double? }
        let at = Date(timeIntervalSince1970: 1_795_000_000.123456)
        func row(_ index: Int) -> Row {
            let note: String? = index % 10 == 0 ? nil : "tab\there\nnewline\\slash é \(index)"
            let tags: [String]?
            switch index % 7 {
            case 0: tags = nil
            case 1: tags = []
            default: tags = ["a", "b \(index % 3)", "q\"uote"]
            }
            let when: Date? = index % 5 == 0 ? nil : at.addingTimeInterval(Double(index))
            let x: Double? = index % 4 == 0 ? nil : Double(index) / 4
            return Row(id: Int64(index), note: note, tags: tags, at: when, x: x)
        }
        let rows = (0..<20_000).map(row)
        let columns = ["id", "small", "name", "note", "tags", "at", "x", "flag"]
        let copied = try await pool.withConnection { connection in
            try connection.copyBinary(into: table, columns: columns, rows: rows) { row, encoder in
                encoder.append(row.id)
                encoder.append(Int32(truncatingIfNeeded: row.id % 100))
                encoder.append("name \(row.id)")
                encoder.append(row.note)
                encoder.append(row.tags)
                encoder.append(row.at)
                encoder.append(row.x)
                encoder.append(row.id % 2 == 0)
            }
        }
        #expect(copied == 20_000)
        let summary = try await pool.query("""
            SELECT count(*)::int AS n, sum(id)::bigint AS total, count(note)::int AS notes, count(tags)::int AS tagged,
                   count(at)::int AS timed, sum(small)::bigint AS smalls, count(*) FILTER (WHERE flag)::int AS flagged
            FROM \(table)
            """)[0]
        #expect(try summary.decode(Int.self, "n") == 20_000)
        #expect(try summary.decode(Int64.self, "total") == Int64(19_999 * 20_000 / 2))
        #expect(try summary.decode(Int.self, "notes") == 18_000)
        #expect(try summary.decode(Int.self, "tagged") == rows.filter { $0.tags != nil }.count)
        #expect(try summary.decode(Int.self, "timed") == 16_000)
        #expect(try summary.decode(Int64.self, "smalls") == Int64(200 * (0..<100).reduce(0, +)))
        #expect(try summary.decode(Int.self, "flagged") == 10_000)
        for id in [Int64(7), 8, 10, 21] {
            let row = try await pool.query("SELECT name, note, tags, at, x FROM \(table) WHERE id = $1", id)[0]
            let expected = rows[Int(id)]
            #expect(try row.decode(String.self, "name") == "name \(id)")
            #expect(try row.decode(String?.self, "note") == expected.note)
            #expect(try row.decode([String]?.self, "tags") == expected.tags)
            #expect(try row.decode(Date?.self, "at") == expected.at, "microseconds kept")
            #expect(try row.decode(Double?.self, "x") == expected.x)
        }
        #expect(try await pool.query("SELECT array_length(tags, 1) AS n FROM \(table) WHERE id = 8")[0].decode(Int?.self, "n") == nil,
                "an empty array stays empty")

        // A bad row aborts the whole COPY: nothing of it is kept, and the connection stays usable.
        await #expect(throws: PostgresError.self) {
            try await pool.withConnection { connection in
                try connection.copyBinary(into: table, columns: ["id", "name"], rows: [Int64(200_000), 1]) { id, encoder in
                    encoder.append(id)
                    encoder.append("duplicate key")
                }
            }
        }
        // A value of the wrong type for its column is refused by the server, not stored wrongly.
        await #expect(throws: PostgresError.self) {
            try await pool.withConnection { connection in
                try connection.copyBinary(into: table, columns: ["id", "small"], rows: [Int64(300_000)]) { id, encoder in
                    encoder.append(id)
                    encoder.append(Int64(1)) // bigint into an integer column
                }
            }
        }
        #expect(try await pool.query("SELECT count(*)::int AS n FROM \(table) WHERE id >= 200000")[0].decode(Int.self, "n") == 0)
        #expect(try await pool.query("SELECT 1 AS one")[0].decode(Int.self, "one") == 1)
        try await pool.query("DROP TABLE \(table)")
        await pool.shutdown()
    }

    @Test func preparedStatementsArePreparedOncePerConnectionAndFollowATableSwap() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 1)
        let table = TestInfrastructure.unique("prepared")
        try await pool.query("CREATE TABLE \(table) (id bigint PRIMARY KEY, name text)")
        try await pool.query("INSERT INTO \(table) VALUES (1, 'one'), (2, 'two')")
        try await pool.withConnection { connection in
            let sql = "SELECT name FROM \(table) WHERE id = $1"
            #expect(try connection.queryPrepared(sql, [Int64(1)])[0].decode(String.self, "name") == "one")
            #expect(try connection.queryPrepared(sql, [Int64(2)])[0].decode(String.self, "name") == "two")
            let prepared = try connection.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement = $1", [sql])
            #expect(try prepared[0].decode(Int.self, "n") == 1, "prepared once, then reused")
            // Another table swapped in under the same name (as a projection rebuild does) is what
            // the next execution reads.
            try connection.execute("""
                ALTER TABLE \(table) RENAME TO \(table)_old;
                CREATE TABLE \(table) (id bigint PRIMARY KEY, name text);
                INSERT INTO \(table) VALUES (1, 'new one')
                """)
            #expect(try connection.queryPrepared(sql, [Int64(1)])[0].decode(String.self, "name") == "new one")
            // A statement that cannot be prepared is an error, and the connection stays usable.
            #expect(throws: PostgresError.self) { try connection.queryPrepared("SELECT * FROM \(table)_missing") }
            #expect(try connection.queryPrepared(sql, [Int64(2)]).isEmpty)
        }
        try await pool.query("DROP TABLE \(table), \(table)_old")
        await pool.shutdown()
    }

    @Test func typedValuesRoundTrip() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 1)
        let id = UUID()
        let bytes = Data((0...255).map { UInt8($0) })
        let when = Date(timeIntervalSince1970: 1_795_000_000.123456)
        let row = try await pool.query("""
            SELECT $1::uuid AS id, $2::bytea AS bytes, $3::timestamptz AS at, $4::text[] AS labels,
                   $5::bool AS flag, $6::float8 AS x, $7::text AS missing, $8::date AS day, $9::bigint AS big,
                   $10::text AS evil
            """, id, bytes, when, ["x", "y z", "q\"uote"], true, 1.25, Optional<String>.none, "2026-12-01", Int64.max,
            "'; DROP TABLE users; --")[0]
        #expect(try row.decode(UUID.self, "id") == id)
        #expect(try row.decode(Data.self, "bytes") == bytes)
        #expect(abs(try row.decode(Date.self, "at").timeIntervalSince(when)) < 0.000_001)
        #expect(try row.decode([String].self, "labels") == ["x", "y z", "q\"uote"])
        #expect(try row.decode(Bool.self, "flag"))
        #expect(try row.decode(Double.self, "x") == 1.25)
        #expect(try row.decode(String?.self, "missing") == nil)
        #expect(try row.isNull("missing"))
        #expect(try row.decode(String.self, "day") == "2026-12-01")
        #expect(try row.decode(Int64.self, "big") == Int64.max)
        #expect(try row.decode(String.self, "evil") == "'; DROP TABLE users; --", "parameters are values, never SQL")
        #expect(throws: PostgresError.self) { try row.decode(String.self, "missing") }
        #expect(throws: PostgresError.self) { try row.decode(Int.self, "no_such_column") }
        await pool.shutdown()
    }

    @Test func errorsCarryTheirSQLState() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 2)
        let table = TestInfrastructure.unique("states")
        try await pool.query("CREATE TABLE \(table) (id int PRIMARY KEY, n int NOT NULL)")
        try await pool.query("INSERT INTO \(table) VALUES (1, 0)")
        await #expect {
            try await pool.query("INSERT INTO \(table) VALUES ($1, 0)", 1)
        } throws: { ($0 as? PostgresError)?.isUniqueViolation == true && ($0 as? PostgresError)?.kind == .server }
        await #expect {
            try await pool.query("SELECT * FROM no_such_table_anywhere")
        } throws: { ($0 as? PostgresError)?.sqlState == "42P01" }

        // A concurrent update under REPEATABLE READ is a serialization failure (40001).
        let url = TestInfrastructure.databaseURL
        await #expect {
            try await pool.withTransaction(isolation: .repeatableRead) { connection in
                _ = try connection.query("SELECT n FROM \(table) WHERE id = 1")
                let other = try PostgresConnection.open(url: url)
                try other.query("UPDATE \(table) SET n = n + 1 WHERE id = 1")
                other.close()
                try connection.query("UPDATE \(table) SET n = n + 10 WHERE id = 1")
            }
        } throws: { error in
            (error as? PostgresError)?.isSerializationFailure == true && (error as? PostgresError)?.isTransient == true
        }
        #expect(try await pool.query("SELECT n FROM \(table) WHERE id = 1")[0].decode(Int.self, "n") == 1)
        try await pool.query("DROP TABLE \(table)")
        await pool.shutdown()
    }

    @Test func transactionsCommitOrRollBackWhole() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 1)
        let table = TestInfrastructure.unique("tx")
        try await pool.query("CREATE TABLE \(table) (id int PRIMARY KEY)")
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await pool.withTransaction { connection in
                try connection.query("INSERT INTO \(table) VALUES (1)")
                try connection.query("INSERT INTO \(table) VALUES (2)")
                throw Abort()
            }
        }
        #expect(try await pool.query("SELECT count(*)::int AS n FROM \(table)")[0].decode(Int.self, "n") == 0)
        try await pool.withTransaction { connection in
            try connection.query("INSERT INTO \(table) VALUES (1)")
            try connection.query("INSERT INTO \(table) VALUES (2)")
        }
        #expect(try await pool.query("SELECT count(*)::int AS n FROM \(table)")[0].decode(Int.self, "n") == 2)
        // The single connection came back clean (not stuck in a transaction) after both.
        #expect(pool.openConnections == 1)
        try await pool.query("DROP TABLE \(table)")
        await pool.shutdown()
    }

    @Test func badCredentialsAreAConnectionError() async throws {
        let pool = PostgresPool(url: "postgres://app:wrong-password@127.0.0.1:15432/app?sslmode=disable", maxConnections: 1)
        await #expect {
            try await pool.query("SELECT 1")
        } throws: { error in
            guard let error = error as? PostgresError else { return false }
            return error.kind == .connection && !error.description.contains("wrong-password")
        }
        #expect(pool.openConnections == 0, "the failed slot was given back")
        await pool.shutdown()
    }
}

/// Restarts the shared test Postgres, so it runs alone (see `make test`: integration suites run
/// one test at a time).
@Suite("Postgres pool recovery")
struct PostgresRecoveryTests {
    @Test func poolRecoversAfterPostgresRestarts() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 4)
        // Fill the pool with idle connections.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { try await pool.query("SELECT pg_sleep(0.05)") } }
            try await group.waitForAll()
        }
        let before = try await pool.query("SELECT pg_postmaster_start_time()::text AS started")[0].decode(String.self, "started")
        try await TestInfrastructure.run(TestInfrastructure.restartPostgresCommand)
        // Every idle connection is dead now; the pool notices and replaces them without failing.
        let after = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await pool.query("SELECT pg_postmaster_start_time()::text AS started")[0].decode(String.self, "started")
                }
            }
            var values: [String] = []
            for try await value in group { values.append(value) }
            return values
        }
        #expect(after.count == 8)
        #expect(Set(after).count == 1)
        #expect(after[0] != before, "answers come from the restarted server")
        #expect(await pool.isHealthy())
        await pool.shutdown()
    }
}

final class Peak: Sendable {
    let value = Mutex(0)
}
