import Contracts
import Foundation
import NATS
import ServiceSupport
import Sharding
import Testing

/// `todo dlq`: list, show, replay (through the normal path, idempotently) and discard.
@Suite("Dead letters for operators", .serialized)
struct DeadLetterAdminIntegrationTests {
    static let owner = ("u-owner", "olivia")

    @Test func listShowReplayAndDiscard() async throws {
        let pipeline = try await InProcessPipeline.start()
        let admin = DeadLetterAdmin(jetStream: pipeline.nats.jetStream)
        let group = TestInfrastructure.unique("grp")
        let subject = GroupSubject.command(try GroupID(group)).subject
        var writer = CommandWriter(jetStream: pipeline.nats.jetStream, groupID: group)
        try await writer.addMember(Self.owner, role: .owner, by: Self.owner)
        try await Projection.waitForVersion(pipeline.pool, group: group, atLeast: 1)
        let before = try await pipeline.nats.jetStream.streamInfo(PipelineStreams.deadLetters).lastSequence

        // A poison command (the engine dead-letters it) and a good one parked as if its
        // deliveries had run out while Postgres was down (a random original sequence: the DLQ
        // drops a letter it stored in the last 2 minutes).
        _ = try await pipeline.nats.jetStream.publish(subject, Data("{poison".utf8), msgID: "poison-\(group)")
        let parked = writer.make(.createTodo, actor: Self.owner, todo: "parked") { $0.title = "came back" }
        try await DeadLetterQueue(jetStream: pipeline.nats.jetStream, prefix: Streams.deadLetterCommandsPrefix).send(
            subject: subject, payload: try writer.message(parked).payload, stream: Streams.commands,
            sequence: UInt64.random(in: 1_000_000_000...9_000_000_000), deliveryCount: 10, error: "max deliveries reached")

        var letters: [DeadLetterAdmin.Letter] = []
        for _ in 0..<100 {
            letters = try await admin.list(from: before + 1, limit: 100_000).filter { $0.originalSubject == subject }
            if letters.count == 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(letters.count == 2)
        let poison = try #require(letters.first { $0.error.contains("undecodable") })
        let good = try #require(letters.first { $0.error == "max deliveries reached" })
        #expect(good.messageID == parked.commandID)
        #expect(good.originalStream == "COMMANDS" && good.deliveryCount == "10")
        #expect(try await admin.depth() >= 2)

        // The CLI shows the same letter.
        let output = try await runTodo(["dlq", "show", String(good.sequence), "--nats-url", TestInfrastructure.natsURL])
        #expect(output.contains("original subject:  \(subject)"))
        #expect(output.contains("came back"))

        // Replayed (and kept), then again: the second copy is dropped inside JetStream's window,
        // which is reported, and the letter stays. One outcome.
        try await admin.replay(good.sequence, keep: true)
        await #expect(throws: DeadLetterAdmin.AdminError.duplicate(good.sequence, windowSeconds: Streams.duplicateWindowSeconds)) {
            try await admin.replay(good.sequence)
        }
        #expect(try await admin.letter(good.sequence) != nil)
        try await Projection.waitForVersion(pipeline.pool, group: group, atLeast: 2)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await Projection.events(pipeline.pool, group: group).map(\.type) == ["member.added", "todo.created"])
        try await admin.discard(good.sequence)
        #expect(try await admin.letter(good.sequence) == nil)

        // An event is never replayed onto EVENTS (a copy after newer events would read as a later change).
        let eventSubject = GroupSubject.event(try GroupID(group)).subject
        try await DeadLetterQueue(jetStream: pipeline.nats.jetStream, prefix: Streams.deadLetterEventsPrefix).send(
            subject: eventSubject, payload: Data("{}".utf8), stream: Streams.events,
            sequence: UInt64.random(in: 1_000_000_000...9_000_000_000), deliveryCount: 1, error: "undecodable event")
        var eventLetter: DeadLetterAdmin.Letter?
        for _ in 0..<100 where eventLetter == nil {
            eventLetter = try await admin.list(from: before + 1, limit: 100_000).first { $0.originalSubject == eventSubject }
            if eventLetter == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let dead = try #require(eventLetter)
        await #expect(throws: DeadLetterAdmin.AdminError.notReplayable(dead.sequence, eventSubject)) { try await admin.replay(dead.sequence) }
        try await admin.discard(dead.sequence)

        try await admin.discard(poison.sequence)
        #expect(try await admin.letter(poison.sequence) == nil)
        await #expect(throws: DeadLetterAdmin.AdminError.noSuchLetter(poison.sequence)) { try await admin.discard(poison.sequence) }
        await pipeline.stop()
    }

    /// Runs the `todo` binary and returns what it printed; fails on a non-zero exit.
    func runTodo(_ arguments: [String]) async throws -> String {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("todo-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let process = try ChildProcess(name: "todo", arguments: arguments, environment: [:], log: log)
        let status = await process.wait()
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(status == 0, "todo \(arguments.joined(separator: " ")) exited \(status): \(output)")
        return output
    }
}
