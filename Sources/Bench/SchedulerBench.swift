import ArgumentParser
import Contracts
import DomainEngine
import Foundation
import Histogram
import Logging
import Migrations
import NATS
import Postgres
import ServiceSupport
import Sharding
import Synchronization

/// `todo-bench scheduler` (DESIGN §9): `--reminders` reminders (100,000 by default) due within one
/// minute, over `--groups` groups, fired by two `todo scheduler` processes through the engine. For
/// each `reminder.fired` event: the lag from the reminder's instant to the engine's decision (the
/// event's `occurred_at`), and a count per reminder showing each fired exactly once.
struct SchedulerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler", abstract: "Reminders due within a minute: fire lag p50/p99 and exactly-once counts, two scheduler replicas.")

    @OptionGroup var servers: BenchServers
    @Option(help: "The todo binary to run the schedulers from.") var todo = ".build/release/todo"
    @Option var reminders = 100_000
    @Option var groups = 100
    @Option(help: "Seconds from the start until the first reminder is due (the backlog is decided and indexed meanwhile).")
    var lead = 60
    @Option(help: "Seconds over which the reminders are due.") var window = 60
    @Option var replicas = 2
    @Option var output = "bench/results"

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let logger = Logger(label: "bench")
        let nats = try await NATSConnection.connect(url: servers.natsURL, name: "todo-bench")
        let pool = PostgresPool(url: servers.databaseURL, maxConnections: 2)
        try await Migrator(pool: pool, migrations: Migration.bundled()).migrate()
        for stream in [Streams.commands, Streams.events, PipelineStreams.deadLetters, UserSubject.stream] {
            try? await nats.jetStream.deleteStream(stream)
        }
        try await PipelineStreams.ensureAll(nats.jetStream, replicas: 1)
        try await pool.query("TRUNCATE scheduler_reminders, scheduler_assignees, notifications")

        let start = Date()
        let first = (start.timeIntervalSince1970 + Double(lead)).rounded(.up)
        let perGroup = max(1, reminders / groups)
        let total = perGroup * groups
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        let encoder = MessageCoding.encoder()
        let owner = ("u-bench-owner", "olivia")
        var messages: [OutgoingMessage] = []
        messages.reserveCapacity(groups * (2 * perGroup + 1))
        func add(_ command: TodoCommand) throws {
            messages.append(OutgoingMessage(subject: GroupSubject.command(try GroupID(command.groupID)).subject,
                                            payload: try encoder.encode(command), msgID: command.commandID))
        }
        for group in 0..<groups {
            let groupID = "bench-sched-\(group)"
            var command = TodoCommand(commandID: "s-\(group)-owner", action: .addMember, groupID: groupID, actorUserID: owner.0,
                                      actorName: owner.1, issuedAt: Date())
            command.memberUserID = owner.0; command.memberUsername = owner.1; command.role = .owner
            try add(command)
            for index in 0..<perGroup {
                try add(TodoCommand(commandID: "s-\(group)-c\(index)", action: .createTodo, groupID: groupID, todoID: "t\(index)",
                                    actorUserID: owner.0, actorName: owner.1, issuedAt: Date(), title: "todo \(index)"))
            }
        }
        for index in 0..<perGroup {
            for group in 0..<groups {
                // Spread evenly over the window, a whole second each (reminders are set to the second).
                let due = Date(timeIntervalSince1970: first + Double((index * groups + group) * window / total))
                try add(TodoCommand(commandID: "s-\(group)-r\(index)", action: .setReminder, groupID: "bench-sched-\(group)",
                                    todoID: "t\(index)", actorUserID: owner.0, actorName: owner.1, issuedAt: Date(),
                                    remindAt: formatter.string(from: due), timezone: "UTC"))
            }
        }

        // What the engine decides, heard live: the reminders set, and each firing.
        let events = try await nats.subscribe(SubjectKind.event.wildcard, bufferSize: 1 << 20)
        try await nats.ping()
        let tally = Mutex(Tally())
        let listener = Task {
            for await message in events {
                guard let decoded = try? EventMessage.decode(message.payload) else { continue }
                tally.withLock { tally in
                    for event in decoded { tally.add(event) }
                }
            }
        }

        print("publishing \(messages.count) commands (\(total) reminders due from \(Date(timeIntervalSince1970: first)) over \(window) s) …")
        let published = await nats.jetStream.publishBatch(messages)
        guard published.allSatisfy({ (try? $0.get()) != nil }) else { throw ValidationError("some commands were not stored") }

        let environment = ["NATS_URL": servers.natsURL, "DATABASE_URL": servers.databaseURL, "ENGINE_DURABLE": "bench-engine"]
        let engineConnection = try await NATSConnection.connect(url: servers.natsURL, name: "bench-engine")
        let engine = DomainEngineService(configuration: try DomainEngineConfiguration(environment: environment),
                                         connection: engineConnection, logger: logger)
        let engineTask = Task { try await engine.run() }
        var schedulers: [Process] = []
        for replica in 0..<replicas {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: todo)
            process.arguments = ["scheduler"]
            process.environment = ProcessInfo.processInfo.environment.merging([
                "NATS_URL": servers.natsURL, "DATABASE_URL": servers.databaseURL, "SCHEDULER_DURABLE": "bench-scheduler",
                "SCHEDULER_HEALTH_ADDR": "127.0.0.1:\(28184 + replica)", "LOG_LEVEL": "warning",
            ]) { $1 }
            try process.run()
            schedulers.append(process)
        }
        defer { for process in schedulers where process.isRunning { process.terminate(); process.waitUntilExit() } }

        // Every reminder set, and indexed, before the first is due.
        let deadline = Date(timeIntervalSince1970: first)
        while true {
            let set = tally.withLock { $0.set }
            if set >= total, try await indexed(pool) >= total { break }
            guard Date() < deadline else {
                throw ValidationError("the backlog was not decided and indexed before the first reminder was due (\(tally.withLock { $0.set }) set); raise --lead")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let ready = Date()
        print("all \(total) reminders set and indexed \(String(format: "%.1f", deadline.timeIntervalSince(ready))) s before the first is due")

        // Until every one fired (or well past the window).
        let end = Date(timeIntervalSince1970: first + Double(window) + 60)
        while tally.withLock({ $0.fired }) < total, Date() < end { try await Task.sleep(for: .milliseconds(200)) }
        try await Task.sleep(for: .seconds(3)) // a late duplicate would show here
        listener.cancel()
        engineTask.cancel()
        _ = await engineTask.result
        await engineConnection.drain()

        let result = tally.withLock { $0 }
        let histogram = result.lags
        func ms(_ percentile: Double) -> String { String(format: "%.0f", Double(histogram.valueAtPercentile(percentile)) / 1000) }
        let rejected = result.rejectedFirings
        var report = Report(title: "scheduler benchmark", header: ["measurement", "value", "target"])
        report.rows = [
            ["reminders due within \(window) s", "\(total)", "100,000"],
            ["fired (reminder.fired events)", "\(result.fired)", "\(total)"],
            ["reminders fired exactly once / more than once / never", "\(result.once) / \(result.twice) / \(total - result.once - result.twice)", "\(total) / 0 / 0"],
            ["fire-reminder commands refused (duplicates reaching the engine)", "\(rejected)", "–"],
            ["fire lag p50 (ms), from the reminder's instant to the engine's decision", ms(50), "–"],
            ["fire lag p99 (ms)", ms(99), "≤ 1,000"],
            ["fire lag max (ms)", String(format: "%.0f", Double(histogram.max) / 1000), "–"],
            ["fired before their instant", "\(result.early)", "0"],
        ]
        report.notes = [
            "\(groups) groups × \(perGroup) todos, one reminder each (UTC, to the second), due evenly over \(window) s (~\(total / max(1, window)) a second).",
            "Two `todo scheduler` processes (release build) share the durable consumer and claim due reminders with SKIP LOCKED; the domain engine runs in the bench process; nats-server and Postgres on the same machine.",
            "Lag = the `reminder.fired` event's `occurred_at` (the engine's clock) − the reminder's `fire_at`; both clocks are this machine's.",
        ]
        print(report.rows.map { $0.joined(separator: " | ") }.joined(separator: "\n"))
        print("report: \(try report.write(to: output, name: "scheduler"))")
        await nats.drain()
        await pool.shutdown()
        guard result.twice == 0, result.early == 0 else { throw ValidationError("a reminder fired twice or early") }
    }

    private func indexed(_ pool: PostgresPool) async throws -> Int {
        try await pool.query("SELECT count(*)::int AS n FROM scheduler_reminders WHERE fire_at IS NOT NULL")[0].decode(Int.self, "n")
    }

    struct Tally {
        var set = 0
        var fired = 0
        var early = 0
        var rejectedFirings = 0
        var perReminder: [String: Int] = [:]
        var lags = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)

        var once: Int { perReminder.values.filter { $0 == 1 }.count }
        var twice: Int { perReminder.values.filter { $0 > 1 }.count }

        mutating func add(_ event: TodoEvent) {
            switch event.eventType {
            case .reminderSet: set += 1
            case .reminderFired:
                fired += 1
                perReminder["\(event.groupID)/\(event.todoID ?? "")", default: 0] += 1
                if let fireAt = event.fireAt {
                    let lag = event.occurredAt.timeIntervalSince(fireAt)
                    if lag < -Reminder.clockSkew { early += 1 }
                    _ = lags.record(UInt64(max(1, lag * 1_000_000)))
                }
            case .commandRejected where event.commandID.hasPrefix("fire-"): rejectedFirings += 1
            default: break
            }
        }
    }
}
