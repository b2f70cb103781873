import ArgumentParser
import Foundation
import Migrations
import Postgres
import Streamer

/// `todo-bench search` (DESIGN §10): 1,000,000 todos over 10,000 groups, one user in 20 of them;
/// the latency of `ReadStore.search` (the streamer's query, through its connection pool) for words
/// that are common, rare, and prefixes of the last word. Wipes the projection tables first.
struct SearchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Search latency over 1M todos in 10k groups, for a user in 20 of them (wipes tables).")

    @OptionGroup var servers: BenchServers
    @Option var todos = 1_000_000
    @Option var groups = 10_000
    @Option(help: "Groups the searching user is in.") var memberOf = 20
    @Option(help: "Queries timed (after a warm-up of 200).") var queries = 2_000
    @Option(help: "Todos of one big group (the per-group cap), searched by a user in it alone.") var bigGroup = 50_000
    @Option(help: "Queries timed per kind in the big group (after a warm-up of 20).") var bigQueries = 300
    @Option var output = "bench/results"

    /// Words the titles, labels and notes are made of: a few common, many rare.
    static let common = ["plan", "review", "design", "launch", "budget", "team", "call", "draft"]
    static let rare = (0..<2_000).map { "topic\($0)" }

    /// Inserts `count` todos into the group(s) named by the SQL expression `group` (over `i`, the
    /// todo's number). Titles of three words, one label, notes of twelve: a common word in one
    /// todo in eight per word, rare words spread evenly. h(i, k) is a multiplicative hash, so
    /// neighbours in a group get different words.
    static func insertTodos(_ count: Int, group: String, idPrefix: String, on db: PostgresConnection) throws {
        _ = try db.query("""
            INSERT INTO todos (group_id, todo_id, title, notes, status, position, labels, created_by, created_by_name,
                               created_at, updated_by, updated_by_name, updated_at, version, group_version)
            SELECT \(group), $4 || i,
                   w[1 + h1 % 8] || ' ' || r[1 + h2 % 2000] || ' ' || r[1 + h3 % 2000],
                   array_to_string(r[1 + h3 % 1988 : 12 + h3 % 1988], ' '),
                   (ARRAY['todo', 'in_progress', 'done'])[1 + i % 3], i, ARRAY[w[1 + h2 % 8]], 'u', 'u',
                   now(), 'u', 'u', now() - (i || ' seconds')::interval, 1, i
            FROM generate_series(1, $1) AS i,
                 LATERAL (SELECT (i::bigint * 2654435761) % 4294967291 AS h1,
                                 (i::bigint * 2246822519) % 4294967279 AS h2,
                                 (i::bigint * 3266489917) % 4294967231 AS h3) AS hashes,
                 (SELECT $2::text[] AS w, $3::text[] AS r) AS words
            """, count, common, rare, idPrefix)
    }

    func run() async throws {
        let pool = PostgresPool(url: servers.databaseURL, maxConnections: 4)
        try await Migrator(pool: pool, migrations: Migration.bundled()).migrate()
        let user = UUID()
        let loadStart = ContinuousClock.now
        try await pool.withConnection { db in
            _ = try db.query("TRUNCATE todos, todo_events, group_projection_offsets")
            _ = try db.query("DELETE FROM group_members WHERE group_id LIKE 'sb-%'")
            _ = try db.query("DELETE FROM groups WHERE group_id LIKE 'sb-%'")
            _ = try db.query("INSERT INTO users (user_id, username, password_hash) VALUES ($1, $2, 'not-a-hash')",
                             user, "search_\(String(user.uuidString.prefix(8)).lowercased())")
            _ = try db.query("""
                INSERT INTO groups (group_id, name, created_by)
                SELECT 'sb-' || g, 'Group ' || g, $1 FROM generate_series(1, $2) AS g
                """, user, groups)
            // The user is in every (groups / memberOf)-th group: their todos are spread over the table.
            _ = try db.query("""
                INSERT INTO group_members (group_id, user_id, role)
                SELECT 'sb-' || g, $1, 'member' FROM generate_series(1, $2) AS g WHERE g % ($2 / $3) = 0
                """, user, groups, memberOf)
            try Self.insertTodos(todos, group: "'sb-' || (1 + i % \(groups))", idPrefix: "todo-", on: db)
            _ = try db.query("ANALYZE todos")
            _ = try db.query("ANALYZE group_members")
        }
        let loadSeconds = (ContinuousClock.now - loadStart).seconds
        print("loaded \(todos) todos in \(groups) groups in \(String(format: "%.0f", loadSeconds)) s")

        let store = ReadStore(pool: pool)
        let kinds: [(name: String, make: (Int) -> String)] = [
            ("one common word", { Self.common[$0 % Self.common.count] }),
            ("one rare word", { Self.rare[($0 * 37) % Self.rare.count] }),
            ("prefix of a common word", { String(Self.common[$0 % Self.common.count].prefix(3)) }),
            ("common word + rare prefix", { Self.common[$0 % Self.common.count] + " " + String(Self.rare[($0 * 11) % Self.rare.count].prefix(7)) }),
        ]
        var report = Report(title: "Search: \(todos) todos in \(groups) groups, a user in \(memberOf)",
                            header: ["query", "queries", "results (mean)", "p50 ms", "p95 ms", "p99 ms", "target"])
        func measure(_ searcher: UUID, label: String, queries: Int, warmUp: Int) async throws {
            for kind in kinds {
                for index in 0..<warmUp { _ = try await store.search(SearchQuery(kind.make(index)), user: searcher, limit: 20) }
                var latency = LatencyHistogram()
                var found = 0
                for index in 0..<queries {
                    let start = ContinuousClock.now
                    found += try await store.search(SearchQuery(kind.make(index + warmUp)), user: searcher, limit: 20).count
                    latency.record(nanoseconds: UInt64((ContinuousClock.now - start).seconds * 1e9))
                }
                report.rows.append([label + kind.name, "\(queries)", String(format: "%.1f", Double(found) / Double(queries)),
                                    String(format: "%.2f", latency.milliseconds(at: 50)), String(format: "%.2f", latency.milliseconds(at: 95)),
                                    String(format: "%.2f", latency.milliseconds(at: 99)), "p95 ≤ 50 ms"])
                FileHandle.standardError.write(Data((report.rows.last!.joined(separator: " | ") + "\n").utf8))
            }
        }
        try await measure(user, label: "", queries: queries, warmUp: 200)

        // One big group: the per-group cap of todos, searched by a user who is in it alone.
        let bigUser = UUID()
        try await pool.withConnection { db in
            _ = try db.query("INSERT INTO users (user_id, username, password_hash) VALUES ($1, $2, 'not-a-hash')",
                             bigUser, "search_\(String(bigUser.uuidString.prefix(8)).lowercased())")
            _ = try db.query("INSERT INTO groups (group_id, name, created_by) VALUES ('sb-big', 'One big group', $1)", bigUser)
            _ = try db.query("INSERT INTO group_members (group_id, user_id, role) VALUES ('sb-big', $1, 'member')", bigUser)
            try Self.insertTodos(bigGroup, group: "'sb-big'", idPrefix: "big-", on: db)
            _ = try db.query("ANALYZE todos")
        }
        try await measure(bigUser, label: "one group of \(bigGroup): ", queries: bigQueries, warmUp: 20)
        report.notes = [
            "`ReadStore.search` in this process against Postgres (the streamer's query and pool; no HTTP), one query at a time, limit 20.",
            "Data: titles of three words (one of 8 common words and two of 2,000 rare ones), a common label, notes of twelve rare words; the user's \(todos / groups * memberOf) todos are spread over the table. Loaded in \(String(format: "%.0f", loadSeconds)) s with the GIN index in place.",
            "Rows \"one group of \(bigGroup)\": then one group of \(bigGroup) todos (the per-group cap), made the same way, searched by a user who is in it alone.",
        ]
        let path = try report.write(to: output, name: "search")
        print("wrote \(path)")
        await pool.shutdown()
    }
}
