import Contracts
import DataSink
import DomainEngine
import Foundation
import NATS
import Postgres
import ServiceSupport
import Sharding
import Testing

@Suite("Pipeline: command → engine → event → sink → Postgres")
struct PipelineIntegrationTests {
    static let owner = ("u-owner", "olivia")
    static let member = ("u-member", "mia")

    @Test func everyActionReachesTheTables() async throws {
        let pipeline = try await InProcessPipeline.start()
        let group = TestInfrastructure.unique("grp")
        var writer = CommandWriter(jetStream: pipeline.nats.jetStream, groupID: group)
        try await writer.addMember(Self.owner, role: .owner, by: Self.owner)
        try await writer.addMember(Self.member, role: .member, by: Self.owner)
        try await writer.send(.createTodo, actor: Self.member, todo: "t1") {
            $0.title = "Write tests"; $0.labels = ["qa", "a \"quoted\" label"]; $0.dueDate = "2026-12-24"; $0.notes = "tab\tand\nnewline"
        }
        try await writer.send(.updateTodo, actor: Self.member, todo: "t1") { $0.title = "Write more tests"; $0.assignee = "mia" }
        try await writer.send(.moveTodo, actor: Self.owner, todo: "t1") { $0.status = .inProgress; $0.position = 2.5 }
        try await writer.send(.createTodo, actor: Self.owner, todo: "t2") { $0.title = "Short-lived" }
        try await writer.send(.deleteTodo, actor: Self.owner, todo: "t2")
        try await Projection.waitForVersion(pipeline.pool, group: group, atLeast: 7)

        let events = try await Projection.events(pipeline.pool, group: group)
        #expect(events.map(\.version) == Array(1...7))
        #expect(events.map(\.type) == ["member.added", "member.added", "todo.created", "todo.updated", "todo.moved",
                                       "todo.created", "todo.deleted"])
        let todos = try await Projection.todos(pipeline.pool, group: group)
        #expect(todos == [
            "t1|Write more tests|tab\tand\nnewline|in_progress|2.5|2026-12-24|mia|" + #"{qa,"a \"quoted\" label"}"# + "|u-member|3|5|f",
            // After t1's place in "todo" (t1 moved on, the column's end stays): position 2.
            "t2|Short-lived||todo|2|∅|∅|{}|u-owner|2|7|t",
        ])
        let offset = try await pipeline.pool.query("SELECT group_version, stream_seq FROM group_projection_offsets WHERE group_id = $1", group)
        #expect(try offset[0].decode(Int64.self, "group_version") == 7)
        #expect(try offset[0].decode(Int64.self, "stream_seq") > 0)
        await pipeline.stop()
    }

    @Test func everyRejectionIsRecordedAsAnEvent() async throws {
        let pipeline = try await InProcessPipeline.start()
        let group = TestInfrastructure.unique("grp")
        var writer = CommandWriter(jetStream: pipeline.nats.jetStream, groupID: group)
        try await writer.addMember(Self.owner, role: .owner, by: Self.owner)
        try await writer.addMember(Self.member, role: .member, by: Self.owner)
        try await writer.send(.createTodo, actor: Self.owner, todo: "t") { $0.title = "owner's" }
        try await writer.send(.createTodo, actor: Self.owner, todo: "t") { $0.title = "same id" }            // todo_exists
        try await writer.send(.updateTodo, actor: Self.member, todo: "t") { $0.title = "not mine" }        // forbidden
        try await writer.send(.moveTodo, actor: Self.owner, todo: "missing") { $0.status = .done }          // todo_not_found
        try await writer.send(.updateTodo, actor: Self.owner, todo: "t") { $0.title = "x"; $0.expectedVersion = 9 } // version_conflict
        try await writer.send(.createTodo, actor: ("u-stranger", "sam"), todo: "s") { $0.title = "hi" }    // not_member
        try await writer.send(.createTodo, actor: Self.owner, todo: "e") { $0.title = "   " }              // invalid_command
        try await writer.send(.deleteGroup, actor: Self.owner)
        try await writer.send(.createTodo, actor: Self.owner, todo: "late") { $0.title = "too late" }      // group_deleted
        try await Projection.waitForVersion(pipeline.pool, group: group, atLeast: 11)

        let codes = try await Projection.events(pipeline.pool, group: group).compactMap(\.code)
        #expect(codes == ["todo_exists", "forbidden", "todo_not_found", "version_conflict", "not_member", "invalid_command",
                          "group_deleted"])
        let todos = try await Projection.todos(pipeline.pool, group: group)
        #expect(todos == ["t|owner's||todo|1|∅|∅|{}|u-owner|1|3|t"], "the group's todos are tombstoned, not orphaned")
        await pipeline.stop()
    }

    @Test func redeliveredAndRepublishedCommandsHaveOneOutcome() async throws {
        let pipeline = try await InProcessPipeline.start()
        let group = TestInfrastructure.unique("grp")
        var writer = CommandWriter(jetStream: pipeline.nats.jetStream, groupID: group)
        try await writer.addMember(Self.owner, role: .owner, by: Self.owner)
        let create = writer.make(.createTodo, actor: Self.owner, todo: "t") { $0.title = "once" }
        try await writer.publish(create)
        // Same command id, published again past JetStream's duplicate check (another message id).
        try await writer.publish(create, msgID: "republished-\(create.commandID)")
        try await writer.send(.updateTodo, actor: Self.owner, todo: "t") { $0.title = "twice?" }
        try await Projection.waitForVersion(pipeline.pool, group: group, atLeast: 3)

        // The same event message delivered to the sink again (as after a crash before its ack).
        let stored = try #require(try await pipeline.nats.jetStream.replayAll(stream: Streams.events,
                                                                               filter: GroupSubject.event(GroupID(group)).subject).last)
        let copied = try EventMessage.decode(stored.payload).count
        _ = try await pipeline.nats.jetStream.publish(OutgoingMessage(subject: stored.subject, payload: stored.payload,
                                                                       msgID: "sink-redelivery-\(group)"))
        try await Task.sleep(for: .milliseconds(500))

        let events = try await Projection.events(pipeline.pool, group: group)
        #expect(events.count == 3)
        #expect(events.filter { $0.command == create.commandID }.count == 1)
        let onStream = try await pipeline.nats.jetStream.replayAll(stream: Streams.events, filter: GroupSubject.event(GroupID(group)).subject)
            .flatMap { try EventMessage.decode($0.payload) }
        #expect(onStream.count == 3 + copied, "three outcomes plus the injected copy; no second outcome for the republished command")
        #expect(try await Projection.todos(pipeline.pool, group: group) == ["t|twice?||todo|1|∅|∅|{}|u-owner|2|3|f"])
        await pipeline.stop()
    }

    @Test func undecodableMessagesGoToTheDeadLetterQueue() async throws {
        let pipeline = try await InProcessPipeline.start()
        let group = TestInfrastructure.unique("grp")
        let commandSubject = GroupSubject.command(try GroupID(group)).subject
        let eventSubject = GroupSubject.event(try GroupID(group)).subject
        _ = try await pipeline.nats.jetStream.publish(commandSubject, Data("{not json".utf8), msgID: "poison-\(group)")
        _ = try await pipeline.nats.jetStream.publish(eventSubject, Data(#"{"v":1}"#.utf8), msgID: "poison-event-\(group)")
        // A good command after the poison one still gets through.
        var writer = CommandWriter(jetStream: pipeline.nats.jetStream, groupID: group)
        try await writer.addMember(Self.owner, role: .owner, by: Self.owner)
        try await Projection.waitForVersion(pipeline.pool, group: group, atLeast: 1)

        let deadCommand = try await waitForMessage(pipeline.nats, stream: PipelineStreams.deadLetters, subject: "app.dlq.commands.\(commandSubject)")
        #expect(String(decoding: deadCommand.payload, as: UTF8.self) == "{not json")
        #expect(deadCommand.headers["Dlq-Error"]?.contains("undecodable") == true)
        #expect(deadCommand.headers["Dlq-Original-Stream"] == "COMMANDS")
        let deadEvent = try await waitForMessage(pipeline.nats, stream: PipelineStreams.deadLetters, subject: "app.dlq.events.\(eventSubject)")
        #expect(deadEvent.headers["Dlq-Original-Subject"] == eventSubject)
        await pipeline.stop()
    }

    private func waitForMessage(_ nats: NATSConnection, stream: String, subject: String) async throws -> StoredMessage {
        for _ in 0..<100 {
            if let message = try await nats.jetStream.lastMessage(stream: stream, subject: subject) { return message }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("nothing arrived on \(subject)")
        throw Projection.TimedOut()
    }
}

@Suite("Dead letters for messages the server gave up on")
struct MaxDeliveriesIntegrationTests {
    @Test func aMessageThatExhaustsMaxDeliverIsDeadLettered() async throws {
        let connection = try await TestInfrastructure.nats()
        try await PipelineStreams.ensureAll(connection.jetStream, replicas: 1)
        let stream = try await ScratchStream(connection)
        let queue = DeadLetterQueue(jetStream: connection.jetStream, prefix: Streams.deadLetterCommandsPrefix)
        let watcher = try await MaxDeliveriesWatcher(connection: connection, stream: stream.name, durable: "fragile",
                                                     deadLetters: queue, logger: .init(label: "watcher"))
        let subject = stream.subject("poison")
        let stored = try await connection.jetStream.publish(subject, Data("crashes the worker".utf8), msgID: "p1")
        let consumer = try await connection.jetStream.pullConsumer(
            stream: stream.name, config: ConsumerConfig(durable: "fragile", ackWait: .seconds(1), maxDeliver: 2))
        // Delivered twice, never acknowledged (as if the worker died each time).
        #expect(try await consumer.fetch(batch: 1, expires: .seconds(2)).first?.metadata.deliveryCount == 1)
        #expect(try await consumer.fetch(batch: 1, expires: .seconds(5)).first?.metadata.deliveryCount == 2)
        // The server gives up; the watcher moves the message to the dead-letter queue.
        var dead: StoredMessage?
        for _ in 0..<100 where dead == nil {
            _ = try await consumer.fetch(batch: 1, expires: .milliseconds(200))
            dead = try await connection.jetStream.lastMessage(stream: PipelineStreams.deadLetters,
                                                              subject: "\(Streams.deadLetterCommandsPrefix).\(subject)")
        }
        let letter = try #require(dead)
        #expect(String(decoding: letter.payload, as: UTF8.self) == "crashes the worker")
        #expect(letter.headers["Dlq-Original-Sequence"] == String(stored.sequence))
        #expect(letter.headers["Dlq-Error"]?.contains("2 deliveries") == true)
        await watcher.stop()
        await consumer.close()
        await stream.delete()
        await connection.drain()
    }
}
