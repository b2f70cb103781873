import Contracts
import ServiceSupport
import DataSink
import Foundation
import NATS
import Postgres
import Sharding
import Testing

@Suite("Replicas and rebuild")
struct ReplicaIntegrationTests {
    /// Publishes the script for `groups` groups (interleaved, as concurrent users would) and
    /// waits until every group's projection holds every outcome.
    func runScript(on pipeline: InProcessPipeline, groups: [String]) async throws {
        var messages: [OutgoingMessage] = []
        var perGroup: [[OutgoingMessage]] = []
        for group in groups {
            var writer = CommandWriter(jetStream: pipeline.nats.jetStream, groupID: group)
            perGroup.append(try Script.commands(&writer).map { try writer.message($0) })
        }
        let length = perGroup.map(\.count).max() ?? 0
        for step in 0..<length {
            for commands in perGroup where step < commands.count { messages.append(commands[step]) }
        }
        let results = await pipeline.nats.jetStream.publishBatch(messages)
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        for (group, commands) in zip(groups, perGroup) {
            try await Projection.waitForVersion(pipeline.pool, group: group, atLeast: Int64(commands.count), timeout: .seconds(60))
        }
    }

    @Test func twoEnginesAndTwoSinksGiveTheSameTablesAsOneOfEach() async throws {
        let run = TestInfrastructure.unique("rep")
        let single = (0..<50).map { "\(run)-single-\($0)" }
        let double = (0..<50).map { "\(run)-double-\($0)" }

        let one = try await InProcessPipeline.start(engines: 1, sinks: 1)
        try await runScript(on: one, groups: single)
        await one.stop()
        let two = try await InProcessPipeline.start(engines: 2, sinks: 2)
        try await runScript(on: two, groups: double)

        for (a, b) in zip(single, double) {
            let todosA = try await Projection.todos(two.pool, group: a)
            let todosB = try await Projection.todos(two.pool, group: b)
            #expect(todosA == todosB, "todos of \(a) and \(b)")
            let eventsA = try await Projection.events(two.pool, group: a)
            let eventsB = try await Projection.events(two.pool, group: b)
            #expect(eventsA.map(\.type) == eventsB.map(\.type), "event order of \(a) and \(b)")
            #expect(eventsA.map(\.code) == eventsB.map(\.code))
            #expect(eventsB.map(\.version) == Array(1...Int64(eventsB.count)), "no gap, no duplicate")
            #expect(Set(eventsB.map(\.command)).count == eventsB.count, "one outcome per command")
        }
        // The script's outcome, checked once: what a reader should see.
        let codes = try await Projection.events(two.pool, group: double[0]).compactMap(\.code)
        #expect(codes == ["forbidden", "forbidden", "forbidden", "version_conflict", "forbidden", "not_member", "todo_exists"])
        await two.stop()
    }

    @Test func rebuildEqualsTheIncrementalProjection() async throws {
        let run = TestInfrastructure.unique("rb")
        let groups = (0..<10).map { "\(run)-\($0)" }
        let pipeline = try await InProcessPipeline.start()
        try await runScript(on: pipeline, groups: groups)

        let rebuilder = ProjectionRebuilder(pool: pipeline.pool, jetStream: pipeline.nats.jetStream, logger: .init(label: "rebuild"))
        let verify = ProjectionTables.live.suffixed("_verify_\(run)")
        let progress = try await rebuilder.build(into: verify)
        #expect(progress.events > 0)
        let streamInfo = try await pipeline.nats.jetStream.streamInfo(Streams.events)
        #expect(progress.lastSequence == streamInfo.lastSequence, "replayed up to the end of the stream (\(progress))")
        for group in groups {
            #expect(try await Projection.todos(pipeline.pool, group: group) == Projection.todos(pipeline.pool, group: group, table: verify.todos))
            let live = try await pipeline.pool.query("SELECT group_version, stream_seq FROM group_projection_offsets WHERE group_id = $1", group)
            let rebuilt = try await pipeline.pool.query("SELECT group_version, stream_seq FROM \(verify.offsets) WHERE group_id = $1", group)
            #expect(try live[0].decode(Int64.self, "group_version") == rebuilt[0].decode(Int64.self, "group_version"))
            #expect(try live[0].decode(Int64.self, "stream_seq") == rebuilt[0].decode(Int64.self, "stream_seq"))
        }
        for table in verify.all { try await pipeline.pool.query("DROP TABLE \(table)") }

        // Swap a rebuilt projection in while the live sink runs, then keep writing.
        let before = try await Projection.todos(pipeline.pool, group: groups[0])
        try await rebuilder.rebuildAndSwap()
        #expect(try await Projection.todos(pipeline.pool, group: groups[0]) == before)
        let indexes = try await pipeline.pool.query("SELECT indexname FROM pg_indexes WHERE tablename = 'todos'").map { try $0.decode(String.self, "indexname") }
        #expect(Set(indexes) == ["todos_pkey", "todos_board_idx", "todos_search_idx", "todos_trash", "todos_deleted_at", "todos_calendar"],
                "index names survive the swap")
        let granted = try await pipeline.pool.query("""
            SELECT has_table_privilege('todo_streamer', 'todos', 'SELECT') AND has_table_privilege('todo_data_sink', 'todo_events', 'INSERT')
                   AND has_table_privilege('todo_data_sink', 'todos', 'DELETE')
                   AND NOT has_table_privilege('todo_streamer', 'todos', 'UPDATE') AS ok
            """)
        #expect(try granted.first?.decode(Bool.self, "ok") == true, "the services' grants survive the swap")
        let after = "\(run)-after"
        try await runScript(on: pipeline, groups: [after])
        #expect(try await Projection.todos(pipeline.pool, group: after).count == 8, "the live sink writes into the swapped-in tables")
        await pipeline.stop()
    }
}
