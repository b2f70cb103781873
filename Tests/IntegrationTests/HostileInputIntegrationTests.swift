import Contracts
import DataSink
import Foundation
import NATS
import Postgres
import Sharding
import Testing

/// DESIGN §3: every accepted command ends applied or rejected, whatever its content, and one
/// event the projection cannot hold never freezes its group.
@Suite("Hostile input through the pipeline")
struct HostileInputIntegrationTests {
    static let owner = ("u-owner", "olivia")

    @Test func textThePostgresRefusesIsRejectedByTheEngineAndTheGroupGoesOn() async throws {
        let pipeline = try await InProcessPipeline.start()
        let group = TestInfrastructure.unique("grp")
        var writer = CommandWriter(jetStream: pipeline.nats.jetStream, groupID: group)
        try await writer.addMember(Self.owner, role: .owner, by: Self.owner)
        // Straight onto the bus, past command-api's checks.
        try await writer.send(.createTodo, actor: Self.owner, todo: "nul") { $0.title = "a\u{0}b" }
        try await writer.send(.createTodo, actor: Self.owner, todo: "lbl") { $0.title = "x"; $0.labels = ["\u{0}"] }
        try await writer.send(.createTodo, actor: Self.owner, todo: "day") { $0.title = "x"; $0.dueDate = "2026-02-30" }
        try await writer.send(.createTodo, actor: Self.owner, todo: "ok") { $0.title = "fine" }
        try await Projection.waitForVersion(pipeline.pool, group: group, atLeast: 5)
        let events = try await Projection.events(pipeline.pool, group: group)
        #expect(events.map(\.code) == [nil, "invalid_command", "invalid_command", "invalid_command", nil])
        #expect(try await Projection.todos(pipeline.pool, group: group).map { $0.prefix(while: { $0 != "|" }) } == ["ok"])
        await pipeline.stop()
    }

    @Test func anUnstorableEventOnEVENTSIsRecordedAndTheOffsetMovesPastIt() async throws {
        let pipeline = try await InProcessPipeline.start()
        let group = TestInfrastructure.unique("grp")
        var writer = CommandWriter(jetStream: pipeline.nats.jetStream, groupID: group)
        try await writer.addMember(Self.owner, role: .owner, by: Self.owner)
        try await Projection.waitForVersion(pipeline.pool, group: group, atLeast: 1)

        // A forged event at the group's next version that no text column can take.
        let forged = TodoEvent(
            eventID: "evt-\(group)-forged", commandID: "\(group)-forged", eventType: .todoCreated, groupID: group,
            todoID: "t-forged", actorUserID: Self.owner.0, actorName: Self.owner.1, occurredAt: Date(),
            shardID: try Shard.of(rawGroupID: group), groupVersion: 2, title: "a\u{0}b", notes: "", status: .todo,
            labels: [], position: 1, version: 1, createdBy: Self.owner.0, createdByName: Self.owner.1, createdAt: Date())
        _ = try await pipeline.nats.jetStream.publish(GroupSubject.event(try GroupID(group)).subject, forged.jsonData(),
                                                      msgID: forged.eventID)
        // And a second, different event at a version the group already has.
        var clash = forged
        clash.eventID = "evt-\(group)-clash"; clash.commandID = "\(group)-clash"; clash.groupVersion = 1; clash.title = "clash"
        _ = try await pipeline.nats.jetStream.publish(GroupSubject.event(try GroupID(group)).subject, clash.jsonData(),
                                                      msgID: clash.eventID)
        // The group goes on: the engine decides at version 3 after the forged one.
        try await writer.send(.createTodo, actor: Self.owner, todo: "after") { $0.title = "after" }
        try await Projection.waitForVersion(pipeline.pool, group: group, atLeast: 3)

        let events = try await Projection.events(pipeline.pool, group: group)
        #expect(events.map(\.version) == [1, 2, 3])
        #expect(events.map(\.type) == ["member.added", "command.rejected", "todo.created"])
        #expect(events[1].code == "projection_failed")
        // The clash (at version 1) moves no offset: wait for its record rather than for a version.
        let query = "SELECT event_id, group_version, event_type, error, payload FROM failed_projections WHERE group_id = $1 ORDER BY group_version DESC"
        _ = try await Poll.seconds("both failures recorded", timeout: .seconds(30)) { try await pipeline.pool.query(query, group).count >= 2 }
        let failed = try await pipeline.pool.query(query, group)
        #expect(failed.count == 2)
        #expect(try failed.count == 2 && failed[1].decode(String.self, "event_id") == clash.eventID, "recorded; version 1 keeps its event")
        #expect(try failed.first?.decode(String.self, "event_id") == forged.eventID)
        #expect(try failed.first?.decode(Int64.self, "group_version") == 2)
        #expect(try failed.first?.decode(String.self, "error").contains("0x00") == true)
        #expect(try failed.first?.decode(Data.self, "payload") == forged.jsonData())

        // The operator's rebuild records the same event the same way instead of aborting.
        let rebuilder = ProjectionRebuilder(pool: pipeline.pool, jetStream: pipeline.nats.jetStream, logger: .init(label: "rebuild"))
        let target = ProjectionTables.live.suffixed("_hostile")
        let progress = try await rebuilder.build(into: target)
        #expect(progress.failed >= 2)
        let rebuilt = try await pipeline.pool.query(
            "SELECT group_version, event_type FROM \(target.events) WHERE group_id = $1 ORDER BY group_version", group)
        #expect(try rebuilt.map { try $0.decode(String.self, "event_type") } == ["member.added", "command.rejected", "todo.created"])
        let offset = try await pipeline.pool.query("SELECT group_version FROM \(target.offsets) WHERE group_id = $1", group)
        #expect(try offset.first?.decode(Int64.self, "group_version") == 3)
        for table in target.all { _ = try await pipeline.pool.query("DROP TABLE IF EXISTS \(table)") }
        await pipeline.stop()
    }
}
