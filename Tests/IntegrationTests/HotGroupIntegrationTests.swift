import Contracts
import DomainEngine
import Foundation
import Logging
import NATS
import ServiceSupport
import Sharding
import Testing

/// One busy group next to quiet ones: the engine reads past a group's backlog and takes the
/// groups in turn, and a run of a group's decisions is appended as one message.
@Suite("Hot groups: a backlog delays only its own group")
struct HotGroupIntegrationTests {
    static let backlog = 20_000

    /// A group's commands: the owner joins, then `count - 1` creates.
    func commands(_ group: String, count: Int, on jetStream: JetStream) throws -> [OutgoingMessage] {
        var writer = CommandWriter(jetStream: jetStream, groupID: group)
        var commands = [writer.make(.addMember, actor: Script.owner) {
            $0.memberUserID = Script.owner.0; $0.memberUsername = Script.owner.1; $0.role = .owner
        }]
        for index in 1..<count {
            commands.append(writer.make(.createTodo, actor: Script.owner, todo: "t\(index)") { $0.title = "todo \(index)" })
        }
        return try commands.map { try writer.message($0) }
    }

    /// Events of the group on EVENTS (each run unpacked), and the number of messages they came in.
    static func events(_ jetStream: JetStream, group: String) async throws -> (events: [TodoEvent], messages: Int) {
        let messages = try await jetStream.replayAll(stream: Streams.events, filter: GroupSubject.event(GroupID(group)).subject)
        return (try messages.flatMap { try EventMessage.decode($0.payload) }, messages.count)
    }

    @Test func aCommandToAnotherGroupIsDecidedWhileABacklogDrains() async throws {
        let pipeline = try await InProcessPipeline.start(engines: 0, sinks: 1)
        let run = TestInfrastructure.unique("hot")
        let hot = "\(run)-busy", quiet = "\(run)-quiet"
        // The backlog is in the stream before any engine runs; the quiet group's two commands
        // come after all of it.
        let results = await pipeline.nats.jetStream.publishBatch(
            try commands(hot, count: Self.backlog, on: pipeline.nats.jetStream) + commands(quiet, count: 2, on: pipeline.nats.jetStream))
        #expect(results.allSatisfy { (try? $0.get()) != nil })

        let engine = try await pipeline.startEngine()
        let start = ContinuousClock.now
        try await Projection.waitUntil("decided", reaches: 2, timeout: .seconds(60), interval: .milliseconds(5)) {
            try await Projection.decidedVersion(pipeline.nats.jetStream, group: quiet)
        }
        let latency = ContinuousClock.now - start
        let hotDecided = try await Projection.decidedVersion(pipeline.nats.jetStream, group: hot)
        // The time depends on the machine (the bench measures it); the order does not.
        print("quiet group decided \(latency) after the engine started; the busy group had \(hotDecided) of \(Self.backlog) decided")
        #expect(hotDecided < Int64(Self.backlog / 2), "the quiet group waited for most of the busy group's backlog")
        try await Projection.waitForVersion(pipeline.pool, group: quiet, atLeast: 2, timeout: .seconds(60))

        // The backlog drains completely, in order, once each, in runs of several events per message.
        let deadline = ContinuousClock.now + .seconds(300)
        while try await Projection.decidedVersion(pipeline.nats.jetStream, group: hot) < Int64(Self.backlog), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let (events, messages) = try await Self.events(pipeline.nats.jetStream, group: hot)
        #expect(events.map(\.groupVersion) == Array(1...Int64(Self.backlog)))
        #expect(events.allSatisfy { $0.eventType != .commandRejected })
        #expect(messages < Self.backlog / 10, "\(messages) messages for \(Self.backlog) events: runs are appended together")
        await engine.stop()
        await pipeline.stop()
    }
}
