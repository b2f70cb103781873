import ArgumentParser
import Contracts
import Foundation
import HTTPAPI
import Migrations
import Postgres
import Sharding

/// `todo-bench export`: a streamer process exports groups of 10,000 and 100,000 events (and a
/// tenth as many todos), read by curl at full speed and at 2 MB/s; the streamer's peak resident
/// memory during each download, against its memory before, shows whether the export streams
/// (flat) or gathers the document (growing with the group).
struct ExportBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Group export: time and the streamer's peak memory for 10k and 100k events.")

    @OptionGroup var servers: BenchServers
    @Option(help: "The todo binary to run the streamer from.") var todo = ".build/release/todo"
    @Option var host = "127.0.0.1"
    @Option var port = 28091
    @Option(help: "Events of the groups exported, comma separated.") var sizes = "10000,100000"
    @Option var output = "bench/results"

    func run() async throws {
        let pool = PostgresPool(url: servers.databaseURL, maxConnections: 2)
        try await Migrator(pool: pool, migrations: Migration.bundled()).migrate()
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let userID = UUID()
        let username = "export_\(tag)"
        let counts = sizes.split(separator: ",").compactMap { Int($0) }
        try await pool.withConnection { db in
            _ = try db.query("INSERT INTO users (user_id, username, password_hash) VALUES ($1, $2, 'not-a-hash')", userID, username)
            for events in counts {
                let group = "bench-export-\(tag)-\(events)"
                _ = try db.query("INSERT INTO groups (group_id, name, created_by) VALUES ($1, $2, $3)", group, "Export \(events)", userID)
                _ = try db.query("INSERT INTO group_members (group_id, user_id, role) VALUES ($1, $2, 'owner')", group, userID)
                // Events as the engine writes them: a create, then updates of the group's todos (a
                // tenth as many todos as events), each carrying the todo's whole snapshot.
                _ = try db.query("""
                    INSERT INTO todo_events (event_id, command_id, group_id, group_version, stream_seq, event_type, todo_id,
                                             actor_user_id, actor_name, payload, occurred_at)
                    SELECT 'evt-' || $1::text || '-' || g, 'cmd-' || $1::text || '-' || g, $1::text, g, g,
                           CASE WHEN g <= $2::int / 10 THEN 'todo.created' ELSE 'todo.updated' END, 'todo-' || (g % ($2::int / 10)),
                           $3::text, $4::text,
                           json_build_object('v', 1, 'event_id', 'evt-' || $1::text || '-' || g, 'command_id', 'cmd-' || $1::text || '-' || g,
                               'event_type', CASE WHEN g <= $2::int / 10 THEN 'todo.created' ELSE 'todo.updated' END,
                               'group_id', $1::text, 'todo_id', 'todo-' || (g % ($2::int / 10)), 'actor_user_id', $3::text, 'actor_name', $4::text,
                               'occurred_at', now(), 'shard_id', 0, 'group_version', g, 'title', 'Todo number ' || (g % ($2::int / 10)),
                               'notes', repeat('Some notes about the work. ', 8), 'status', 'todo', 'position', g,
                               'labels', json_build_array('design', 'q4'), 'version', 1 + g / ($2::int / 10),
                               'created_by', $3::text, 'created_by_name', $4::text, 'created_at', now())::jsonb,
                           now()
                    FROM generate_series(1, $2::int) AS g
                    """, group, events, userID.lowercasedString, username)
                _ = try db.query("""
                    INSERT INTO todos (group_id, todo_id, title, notes, status, position, labels, created_by, created_by_name,
                                       created_at, updated_by, updated_by_name, updated_at, version, group_version)
                    SELECT $1, 'todo-' || i, 'Todo number ' || i, repeat('Some notes about the work. ', 8), 'todo', i,
                           ARRAY['design', 'q4'], $3, $4, now(), $3, $4, now(), 10, $2
                    FROM generate_series(0, $2 / 10 - 1) AS i
                    """, group, events, userID.lowercasedString, username)
                _ = try db.query("""
                    INSERT INTO group_projection_offsets (group_id, group_version, stream_seq, updated_at) VALUES ($1, $2, $2, now())
                    """, group, events)
            }
        }

        let key = TokenSigningKey.generate(kid: "bench")
        let token = try await AccessTokenIssuer(signingKey: key, lifetime: .seconds(3600))
            .issue(for: AuthenticatedUser(userID: userID, username: username, sessionID: UUID()))
        let server = try await startStreamer(todo, servers: servers, host: host, port: port, key: key)
        defer { if server.isRunning { server.terminate(); server.waitUntilExit() } }
        // A first export warms the process (pool connections, prepared statements, allocator).
        _ = try download(group: "bench-export-\(tag)-\(counts[0])", token: token, rate: nil)
        let pid = server.processIdentifier

        var report = Report(title: "group export benchmark", header: ["group", "read by", "bytes", "seconds", "RSS before (MiB)", "peak RSS (MiB)", "peak − before (MiB)"])
        for events in counts {
            for rate in [nil, "2M"] as [String?] {
                let before = try memory(of: pid, "VmRSS:")
                try "5".write(toFile: "/proc/\(pid)/clear_refs", atomically: false, encoding: .utf8) // peak := now
                let (bytes, seconds) = try download(group: "bench-export-\(tag)-\(events)", token: token, rate: rate)
                let peak = try memory(of: pid, "VmHWM:")
                let row = ["\(events) events, \(events / 10) todos", rate.map { "curl at \($0)B/s" } ?? "curl, full speed", "\(bytes)",
                           String(format: "%.2f", seconds), mib(before), mib(peak), mib(peak - before)]
                print(row.joined(separator: " | "))
                report.rows.append(row)
            }
        }
        report.notes = [
            "The streamer (release build) exports `GET /api/v1/groups/{id}/export` as JSON; groups seeded straight into Postgres (events of ~900 bytes of JSON, as the engine writes them).",
            "RSS is VmRSS from /proc before the download; the peak is VmHWM, reset just before it (`echo 5 > /proc/<pid>/clear_refs`).",
            "The export writes a page of 500 rows at a time and waits for the client to take it, so the peak should not follow the group's size or the client's speed.",
        ]
        print("report: \(try report.write(to: output, name: "export"))")
        await pool.shutdown()
    }

    private func mib(_ kilobytes: Int) -> String { String(format: "%.1f", Double(kilobytes) / 1024) }

    private func download(group: String, token: String, rate: String?) throws -> (bytes: Int, seconds: Double) {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        var arguments = ["-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download} %{time_total}",
                         "-H", "Authorization: Bearer \(token)", "http://\(host):\(port)/api/v1/groups/\(group)/export"]
        if let rate { arguments += ["--limit-rate", rate] }
        curl.arguments = arguments
        let out = Pipe()
        curl.standardOutput = out
        try curl.run()
        curl.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ")
        guard curl.terminationStatus == 0, text.count == 2, let bytes = Int(text[0]), let seconds = Double(text[1]) else {
            throw ValidationError("export of \(group) failed: curl exited \(curl.terminationStatus)")
        }
        return (bytes, seconds)
    }

    private func memory(of pid: Int32, _ field: String) throws -> Int {
        try processStatus(pid, field)
    }
}
