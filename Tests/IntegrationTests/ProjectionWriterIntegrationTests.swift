import Contracts
import Foundation
import Postgres
import Testing
@testable import DataSink

/// The sink's per-batch statements against a real Postgres, on tables of their own (made like the
/// live ones), one connection, so the statements prepared by one batch are the ones the next uses.
@Suite("Sink: the projection writer's statements")
struct ProjectionWriterIntegrationTests {
    static func event(group: String, version: Int64, todo: String? = nil) -> ProjectedEvent {
        let todo = todo ?? "t\(version)"
        let event = TodoEvent(eventID: "evt-\(group)-\(version)", commandID: "\(group)-\(version)", eventType: .todoCreated,
                              groupID: group, todoID: todo, actorUserID: "u", actorName: "ann",
                              occurredAt: Date(timeIntervalSince1970: 1_795_000_000 + Double(version)), shardID: 0,
                              groupVersion: version, title: "todo \(version)", status: .todo, position: Double(version),
                              version: 1, createdBy: "u")
        let json = String(decoding: try! MessageCoding.encoder().encode(event), as: UTF8.self)
        return ProjectedEvent(event: event, json: json, streamSequence: UInt64(version) * 10)
    }

    /// Fresh tables like the live ones; dropped by `drop`.
    static func makeTables(on connection: PostgresConnection) throws -> ProjectionTables {
        let tables = ProjectionTables.live.suffixed("_\(TestInfrastructure.unique("writer"))")
        for (live, fresh) in zip(ProjectionTables.live.all, tables.all) {
            try connection.execute("CREATE TABLE \(fresh) (LIKE \(live) INCLUDING ALL)")
        }
        return tables
    }

    static func drop(_ tables: ProjectionTables, on connection: PostgresConnection) throws {
        for table in tables.all { try connection.execute("DROP TABLE IF EXISTS \(table)") }
    }

    static func apply(_ batch: [ProjectedEvent], _ writer: ProjectionWriter, on connection: PostgresConnection) throws -> ProjectionWriter.Result {
        try connection.execute("BEGIN")
        do {
            let result = try writer.apply(batch, on: connection)
            try connection.execute("COMMIT")
            return result
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    static func offsets(_ tables: ProjectionTables, on connection: PostgresConnection) throws -> [String: [Int64]] {
        var offsets: [String: [Int64]] = [:]
        for row in try connection.query("SELECT group_id, group_version, stream_seq FROM \(tables.offsets)") {
            offsets[try row.decode(String.self, "group_id")] = [try row.decode(Int64.self, "group_version"),
                                                               try row.decode(Int64.self, "stream_seq")]
        }
        return offsets
    }

    /// One todo's events as the engine emits them: created (v1), deleted (v2), restored (v3), and
    /// a `group.deleted` after them.
    static func lifecycle(group: String) -> [ProjectedEvent] {
        func make(_ type: EventType, _ version: Int64, todoVersion: Int64?) -> ProjectedEvent {
            let event = TodoEvent(eventID: "evt-\(group)-\(version)", commandID: "\(group)-\(version)", eventType: type,
                                  groupID: group, todoID: type == .groupDeleted ? nil : "t", actorUserID: "u", actorName: "ann",
                                  occurredAt: Date(timeIntervalSince1970: 1_795_000_000 + Double(version)), shardID: 0,
                                  groupVersion: version, title: type == .groupDeleted ? nil : "kept", status: type == .groupDeleted ? nil : .todo,
                                  position: type == .groupDeleted ? nil : 1, version: todoVersion, createdBy: "u")
            let json = String(decoding: try! MessageCoding.encoder().encode(event), as: UTF8.self)
            return ProjectedEvent(event: event, json: json, streamSequence: UInt64(version) * 10)
        }
        return [make(.todoCreated, 1, todoVersion: 1), make(.todoDeleted, 2, todoVersion: 2),
                make(.todoRestored, 3, todoVersion: 3), make(.groupDeleted, 4, todoVersion: nil)]
    }

    /// The trash in the projection: whatever order batches commit in (two sinks), a todo ends as
    /// its newest event left it — a late delete does not undo a restore, a late restore does not
    /// bring back a todo of a deleted group.
    @Test(arguments: [
        // batches of lifecycle indexes, in commit order → deleted_at of todo t after 3 events, after all 4
        ([[0], [1], [2]], false),
        ([[0, 2], [1]], false),           // the delete (v2) arrives after the restore (v3)
        ([[2], [0, 1]], false),
        ([[0], [1], [2, 3]], true),       // restore and group deletion in one batch
        ([[0, 1, 3], [2]], true),         // the restore arrives after the group was deleted
    ] as [([[Int]], Bool)])
    func trashFollowsTheNewestEventWhateverTheOrder(_ batches: [[Int]], _ groupDeleted: Bool) async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 1)
        let deletedAt = try await pool.withConnection { connection in
            let tables = try Self.makeTables(on: connection)
            defer { try? Self.drop(tables, on: connection) }
            let writer = ProjectionWriter(tables: tables)
            let events = Self.lifecycle(group: "g")
            for batch in batches { _ = try Self.apply(batch.map { events[$0] }, writer, on: connection) }
            let row = try connection.query("SELECT deleted_at, version FROM \(tables.todos) WHERE todo_id = 't'")[0]
            #expect(try row.decode(Int64.self, "version") == 3)
            return try row.decode(Date?.self, "deleted_at")
        }
        #expect((deletedAt != nil) == groupDeleted, "\(batches): deleted_at \(String(describing: deletedAt))")
        await pool.shutdown()
    }

    /// A group's offset is the end of the run of stored versions from 1: it waits at a gap, and
    /// jumps over everything stored meanwhile once the gap is filled.
    @Test func offsetsStopAtGapsAndJumpWhenTheyAreFilled() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 1)
        let batches: [[(String, Int64)]] = [
            [("a", 1), ("a", 2)],
            [("a", 4), ("b", 2)], // a: 3 is missing; b: 1 is missing, so b has no offset yet
            [("a", 3)], // fills the gap: 4 was stored before
            [("a", 4), ("a", 5), ("a", 7), ("b", 1)], // 4 again
            [("a", 6)],
        ]
        let after = try await pool.withConnection { connection in
            let tables = try Self.makeTables(on: connection)
            defer { try? Self.drop(tables, on: connection) }
            let writer = ProjectionWriter(tables: tables)
            return try batches.map { batch in
                let result = try Self.apply(batch.map { Self.event(group: $0.0, version: $0.1) }, writer, on: connection)
                return (inserted: result.inserted, offsets: try Self.offsets(tables, on: connection))
            }
        }
        await pool.shutdown()
        #expect(after.map(\.inserted) == [2, 2, 1, 3, 1])
        #expect(after.map(\.offsets) == [
            ["a": [2, 20]],
            ["a": [2, 20]],
            ["a": [4, 40]],
            ["a": [5, 50], "b": [2, 20]],
            ["a": [7, 70], "b": [2, 20]],
        ])
    }

    /// Postgres plans a prepared statement once and keeps the plan until a table it reads changes
    /// enough to be analysed again. The staging table has no statistics, so the planner's guess of
    /// a batch's size is fixed when the plan is made: after a large first batch (a catch-up) over
    /// small tables, it chose to hash the whole events table and to scan every offset for each
    /// batch, and every later batch of a few events paid for reading all of them (at a live rate
    /// of 500 events/s, 0.4 of a core of Postgres). Every lookup must go through an index,
    /// whatever the planner guessed about the batch.
    @Test func perBatchStatementsLookUpByIndexWhateverTheFirstBatchWas() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 1)
        let (tables, offset, plans) = try await pool.withConnection { connection in
            let tables = try Self.makeTables(on: connection)
            defer { try? Self.drop(tables, on: connection) }
            let writer = ProjectionWriter(tables: tables)
            // The first batch prepares the statements: a catch-up of 4,000 events over 2,000 groups
            // into empty tables.
            let groups = (0..<2_000).map { "g\($0)" }
            _ = try Self.apply(groups.flatMap { [Self.event(group: $0, version: 1), Self.event(group: $0, version: 2)] },
                               writer, on: connection)
            // A live-rate batch runs the plans made for the first one.
            _ = try Self.apply(groups.prefix(20).map { Self.event(group: $0, version: 3) }, writer, on: connection)
            let offset = try Self.offsets(tables, on: connection)["g0"]

            var plans: [String] = []
            for sql in [writer.applySQL, writer.offsetSQL] {
                guard let name = try connection.query("SELECT name FROM pg_prepared_statements WHERE statement = $1", sql)
                    .first?.decode(String.self, "name") else { plans.append("not prepared"); continue }
                try connection.execute("BEGIN")
                defer { try? connection.execute("ROLLBACK") }
                try connection.execute(ProjectionWriter.createStaging)
                plans.append(try connection.query("EXPLAIN EXECUTE \(name)")
                    .map { try $0.decode(String.self, "QUERY PLAN") }.joined(separator: "\n"))
            }
            return (tables, offset, plans)
        }
        await pool.shutdown()
        #expect(offset == [3, 30])
        #expect(plans.count == 2)
        for plan in plans {
            #expect(plan != "not prepared")
            #expect(!plan.contains("hashed SubPlan"), "a lookup hashes a whole table:\n\(plan)")
            for table in tables.all {
                #expect(!plan.contains("Seq Scan on \(table) "), "\(table) is read whole:\n\(plan)")
            }
        }
    }
}
