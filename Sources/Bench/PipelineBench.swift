import ArgumentParser
import Contracts
import DataSink
import DomainEngine
import Foundation
import Logging
import Migrations
import NATS
import Postgres
import ServiceSupport
import Sharding

/// `todo-bench pipeline`: the domain engine's sustained decide rate and the data sink's catch-up
/// rate, each over a backlog, with every server on this machine. Starts from empty streams and
/// projection tables, so run it against servers of its own (`make bench` does).
struct PipelineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline", abstract: "Engine commands/s and sink events/s over a backlog (wipes streams and tables).")

    @OptionGroup var servers: BenchServers
    var natsURL: String { servers.natsURL }
    var databaseURL: String { servers.databaseURL }
    @Option(help: "Commands in the backlog.") var commands = 100_000
    @Option(help: "Groups the commands are spread over.") var groups = 1000
    @Option(help: "The sink's batch size (SINK_BATCH_SIZE); default: the sink's own.") var sinkBatch: Int?
    @Option(help: "The sink's parallel writers (SINK_WRITERS); default: the sink's own.") var sinkWriters: Int?
    @Option var output = "bench/results"

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let logger = Logger(label: "bench")
        let nats = try await NATSConnection.connect(url: natsURL, name: "todo-bench")
        let pool = PostgresPool(url: databaseURL, maxConnections: 4)
        try await Migrator(pool: pool, migrations: Migration.bundled()).migrate()
        for stream in [Streams.commands, Streams.events, PipelineStreams.deadLetters] {
            try? await nats.jetStream.deleteStream(stream)
        }
        try await PipelineStreams.ensureAll(nats.jetStream, replicas: 1)
        try await pool.query("TRUNCATE todo_events, todos, group_projection_offsets")

        // The backlog: per group one owner, then creates, updates and moves.
        let perGroup = max(2, commands / groups)
        var messages: [OutgoingMessage] = []
        messages.reserveCapacity(perGroup * groups)
        let encoder = MessageCoding.encoder()
        let owner = ("u-owner", "olivia")
        for step in 0..<perGroup {
            for group in 0..<groups {
                let groupID = "bench-\(group)"
                var command = TodoCommand(commandID: "b-\(group)-\(step)", action: .createTodo, groupID: groupID,
                                          todoID: "t\(step / 4)", actorUserID: owner.0, actorName: owner.1, issuedAt: Date())
                switch step {
                case 0:
                    command.action = .addMember
                    command.memberUserID = owner.0; command.memberUsername = owner.1; command.role = .owner
                    command.todoID = nil
                default:
                    switch step % 4 {
                    case 1: command.title = "todo \(step)"
                    case 2: command.action = .updateTodo; command.notes = "notes \(step)"
                    case 3: command.action = .moveTodo; command.status = .inProgress
                    default: command.action = .updateTodo; command.title = "renamed \(step)"; command.todoID = "t\(step / 4 - 1)"
                    }
                }
                messages.append(OutgoingMessage(subject: GroupSubject.command(try GroupID(groupID)).subject,
                                                payload: try encoder.encode(command), msgID: command.commandID))
            }
        }
        let total = messages.count
        print("publishing \(total) commands over \(groups) groups …")
        let publishStart = ContinuousClock.now
        let published = await nats.jetStream.publishBatch(messages)
        let publishSeconds = (ContinuousClock.now - publishStart).seconds
        guard published.allSatisfy({ (try? $0.get()) != nil }) else { throw ValidationError("some commands were not stored") }

        // Engine: decide the whole backlog.
        var environment = ["NATS_URL": natsURL, "DATABASE_URL": databaseURL, "ENGINE_DURABLE": "bench-engine",
                           "SINK_DURABLE": "bench-sink"]
        if let sinkBatch { environment["SINK_BATCH_SIZE"] = String(sinkBatch) }
        if let sinkWriters { environment["SINK_WRITERS"] = String(sinkWriters) }
        let engineConnection = try await NATSConnection.connect(url: natsURL, name: "bench-engine")
        let engine = DomainEngineService(configuration: try DomainEngineConfiguration(environment: environment),
                                         connection: engineConnection, logger: logger)
        let engineStart = ContinuousClock.now
        let engineTask = Task { try await engine.run() }
        let lastCommand = try await nats.jetStream.streamInfo(Streams.commands).lastSequence
        try await waitFor("engine", total: total) {
            // Acknowledged up to the last command means decided up to it (a run's events share a
            // message, so EVENTS' message count is not the number of outcomes).
            guard let info = try? await nats.jetStream.consumerInfo(stream: Streams.commands, durable: "bench-engine") else { return 0 }
            return info.ackFloorStreamSequence >= lastCommand ? UInt64(total) : info.ackFloorStreamSequence
        }
        let engineSeconds = (ContinuousClock.now - engineStart).seconds
        engineTask.cancel()
        _ = await engineTask.result
        await engineConnection.drain()

        // Sink: project the whole EVENTS backlog.
        let sinkConnection = try await NATSConnection.connect(url: natsURL, name: "bench-sink")
        let sinkConfiguration = try DataSinkConfiguration(environment: environment)
        let sink = DataSinkService(configuration: sinkConfiguration, connection: sinkConnection,
                                   pool: pool, logger: logger)
        let sinkStart = ContinuousClock.now
        let sinkTask = Task { try await sink.run() }
        let lastEvent = try await nats.jetStream.streamInfo(Streams.events).lastSequence
        try await waitFor("sink", total: total) {
            // Acknowledged up to the last event means committed up to it (the sink acks after commit).
            guard let info = try? await nats.jetStream.consumerInfo(stream: Streams.events, durable: "bench-sink") else { return 0 }
            let floor = info.ackFloorStreamSequence
            return floor >= lastEvent ? UInt64(total) : floor
        }
        let sinkSeconds = (ContinuousClock.now - sinkStart).seconds
        sinkTask.cancel()
        _ = await sinkTask.result
        await sinkConnection.drain()

        let rejected = try await pool.query("SELECT count(*)::int AS n FROM todo_events WHERE event_type = 'command.rejected'")[0]
            .decode(Int.self, "n")
        var report = Report(title: "Pipeline benchmark", header: ["measurement", "rate", "unit", "target"])
        report.rows = [
            ["commands published to JetStream (`publishBatch`, for reference)", rate(total, publishSeconds), "cmd/s", "–"],
            ["domain engine: backlog decided (state load, decide, publish with expected sequence, ack)", rate(total, engineSeconds), "cmd/s", "≥ 30,000"],
            ["data sink: backlog projected (COPY + set-based upsert, one transaction per batch)", rate(total, sinkSeconds), "events/s", "≥ 100,000"],
        ]
        report.notes = [
            "\(total) commands over \(groups) groups (\(perGroup) per group: owner, then creates, updates, moves); \(rejected) were rejected by the rules, the rest applied.",
            "Engine and sink run in the benchmark process (release build), one replica each, against nats-server and Postgres on the same machine.",
            "Sink settings: batch \(sinkConfiguration.batchSize), \(sinkConfiguration.writers) parallel writer(s); each group's events go to one writer.",
        ]
        print(report.markdown())
        print("written to \(try report.write(to: output, name: "pipeline"))")
        await nats.drain()
        await pool.shutdown()
    }

    private func waitFor(_ what: String, total: Int, timeout: Duration = .seconds(600), progress: () async throws -> UInt64) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = ContinuousClock.now
        while true {
            let done = try await progress()
            if done >= UInt64(total) { return }
            if ContinuousClock.now > deadline { throw ValidationError("\(what) reached \(done) of \(total) within \(timeout)") }
            if ContinuousClock.now - last > .seconds(2) {
                last = .now
                print("  \(what): \(done) / \(total)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
