import ArgumentParser
import CEpoll
import Contracts
import DomainEngine
import Foundation
import HTTPAPI
import Logging
import Migrations
import NATS
import Postgres
import ServiceSupport
import Sharding

/// `todo-bench hot-group`: one busy board. A backlog of commands for a single group is published
/// to COMMANDS as fast as JetStream takes them, while the engine (one replica, then two), the sink
/// and the streamer run as release processes of their own with 100 SSE listeners on that group:
/// commands/s accepted, decided, projected and delivered to every listener, the backlog's drain
/// time, and how long one command to another group waits meanwhile. Then the cost of deciding one
/// command against a group of 100 and of 100,000 todos (in process).
struct HotGroupBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hot-group", abstract: "One group's backlog through engine, sink and streamer (wipes streams and tables).")

    @OptionGroup var servers: BenchServers
    var natsURL: String { servers.natsURL }
    var databaseURL: String { servers.databaseURL }
    @Option(help: "The todo binary the services run from.") var todo = ".build/release/todo"
    @Option(help: "Commands in the hot group's backlog.") var commands = 30_000
    @Option(help: "SSE listeners of the hot group.") var listeners = 100
    @Option(help: "Commands/s of the sustained phase.") var sustainedRate = 5_000
    @Option(help: "Seconds of the sustained phase.") var sustainedSeconds = 10
    @Option(help: "Engine replicas per round, comma-separated.") var engines = "1,2"
    @Option var output = "bench/results"
    @Option var streamerPort = 28481
    @Option(help: "Where the services' logs go (nothing kept when not given).") var logDirectory: String?

    func run() async throws {
        let pool = PostgresPool(url: databaseURL, maxConnections: 2)
        try await Migrator(pool: pool, migrations: Migration.bundled()).migrate()
        let nats = try await NATSConnection.connect(url: natsURL, name: "todo-bench")
        var report = Report(title: "Hot group benchmark", header: ["measurement", "1 engine", "2 engines", "unit", "target"])
        var rounds: [Round] = []
        for replicas in engines.split(separator: ",").compactMap({ Int($0) }) {
            print("round with \(replicas) engine replica(s) …")
            rounds.append(try await round(replicas: replicas, nats: nats, pool: pool))
        }
        func row(_ name: String, _ unit: String, _ target: String, _ value: (Round) -> String) -> [String] {
            [name] + (0..<2).map { $0 < rounds.count ? value(rounds[$0]) : "–" } + [unit, target]
        }
        report.rows = [
            row("accepted (published to COMMANDS, `publishBatch`)", "cmd/s", "–") { rate(commands, $0.published) },
            row("decided (outcome events stored)", "cmd/s", "≥ 5,000") { rate(commands, $0.decided) },
            row("projected (sink committed the group's offset)", "cmd/s", "≥ 5,000") { rate(commands, $0.projected) },
            row("backlog delivered to every SSE listener that kept up", "cmd/s", "–") { $0.delivered > 0 ? rate(commands, $0.delivered) : "none kept up" },
            row("backlog: SSE listeners dropped as too slow (of \(listeners))", "listeners", "–") { "\($0.dropped)" },
            row("backlog drained: last command decided, after the last was accepted", "s", "–") {
                String(format: "%.2f", $0.decided - $0.published) },
            row("a command to another group, sent after the whole backlog: decided after", "ms", "≤ 1,000") {
                String(format: "%.0f", $0.otherGroup * 1000) },
            row("events per EVENTS message (mean)", "events", "–") { String(format: "%.1f", Double(commands) / Double($0.messages)) },
            row("CPU: engines / sink / streamer / nats-server / postgres", "µs per command", "–") { round in
                round.cpu.map { String(format: "%.0f", $0 * 1e6 / Double(commands)) }.joined(separator: " / ") },
            row("sustained \(sustainedRate) cmd/s for \(sustainedSeconds) s: delivered to every listener", "cmd/s", "≥ 5,000") {
                String(format: "%.0f", $0.sustainedDelivered) },
            row("sustained: publish → SSE at the listener's socket, p50 / p99", "ms", "–") {
                String(format: "%.1f / %.1f", $0.sustainedLatency.milliseconds(at: 50), $0.sustainedLatency.milliseconds(at: 99)) },
            row("sustained: listeners dropped as too slow (of \(listeners))", "listeners", "0") { "\($0.sustainedDropped)" },
            row("sustained CPU: engines / sink / streamer / nats-server / postgres", "µs per command", "–") { round in
                round.sustainedCPU.map { String(format: "%.0f", $0 * 1e6 / Double(sustainedRate * sustainedSeconds)) }.joined(separator: " / ") },
            row("cold load of the group's state (every event, as a restarted engine does)", "ms", "–") {
                String(format: "%.0f for %d events", $0.load * 1000, $0.loadedEvents) },
        ]
        let decide = try decideCost()
        report.rows.append(["decide + apply one update, group of 100 todos", String(format: "%.2f", decide.small), "", "µs", "–"])
        report.rows.append(["decide + apply one update, group of 100,000 todos", String(format: "%.2f", decide.large), "", "µs",
                            "about the same as at 100"])
        report.notes = [
            "\(commands) commands for one group (the owner joins; then creates, updates and moves of \(commands / 5) todos), published with `publishBatch` while the services run; 100 SSE clients (`EpollSSEClients`, 2 reader threads) hold streams of the group on the streamer. Times count from the first publish.",
            "The engine(s), the sink and the streamer are the release `todo` binary, one process each, default settings; nats-server and Postgres as `make bench` starts them, all on this machine.",
            "The other group's command is published right after the backlog; its time is until its outcome is on EVENTS.",
            "Decide cost: `Decider.decide` + `Decider.apply` of 20,000 updates against a state held in place, in this process.",
        ]
        print(report.markdown())
        print("written to \(try report.write(to: output, name: "hot-group"))")
        await nats.drain()
        await pool.shutdown()
    }

    struct Round {
        var published = 0.0, decided = 0.0, projected = 0.0, delivered = 0.0, otherGroup = 0.0
        var messages = 0
        /// Listeners the streamer dropped as too slow.
        var dropped = 0
        var cpu: [Double] = []
        var sustainedDelivered = 0.0
        var sustainedDropped = 0
        var sustainedLatency = LatencyHistogram()
        var sustainedCPU: [Double] = []
        var load = 0.0
        var loadedEvents = 0
    }

    private func round(replicas: Int, nats: NATSConnection, pool: PostgresPool) async throws -> Round {
        for stream in [Streams.commands, Streams.events, PipelineStreams.deadLetters] { try? await nats.jetStream.deleteStream(stream) }
        try await PipelineStreams.ensureAll(nats.jetStream, replicas: 1)
        try await pool.query("TRUNCATE todo_events, todos, group_projection_offsets")

        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let userID = UUID()
        let username = "hot_\(tag)"
        let group = try GroupID("hot-\(tag)"), other = try GroupID("quiet-\(tag)")
        try await pool.withTransaction { db in
            try db.query("INSERT INTO users (user_id, username, password_hash) VALUES ($1, $2, 'not-a-hash')", userID, username)
            try db.query("INSERT INTO groups (group_id, name, created_by) VALUES ($1, 'hot group', $2)", group.rawValue, userID)
            try db.query("INSERT INTO group_members (group_id, user_id, role) VALUES ($1, $2, 'owner')", group.rawValue, userID)
        }
        let key = TokenSigningKey.generate(kid: "bench")
        let token = try await AccessTokenIssuer(signingKey: key, lifetime: .seconds(3600))
            .issue(for: AuthenticatedUser(userID: userID, username: username, sessionID: UUID()))

        let base = ["NATS_URL": natsURL, "DATABASE_URL": databaseURL, "LOG_LEVEL": "warning"].merging(key.environment) { $1 }
        var processes: [(String, Process)] = []
        defer { for (_, process) in processes where process.isRunning { process.terminate(); process.waitUntilExit() } }
        func start(_ name: String, _ arguments: [String], _ environment: [String: String], health: String) async throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: todo)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(base.merging(environment) { $1 }) { $1 }
            if let logDirectory {
                let path = "\(logDirectory)/hot-group-\(name)-\(processes.count).log"
                FileManager.default.createFile(atPath: path, contents: nil)
                process.standardError = FileHandle(forWritingAtPath: path)
                process.standardOutput = process.standardError
            } else {
                process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            }
            try process.run()
            processes.append((name, process))
            try await waitUntilReady("http://\(health)/readyz")
        }
        try await start("streamer", ["streamer"], ["STREAMER_ADDR": "127.0.0.1:\(streamerPort)", "STREAMER_INTERNAL_ADDR": "127.0.0.1:\(streamerPort + 1000)",
                                                   "READ_RATE_PER_SECOND": "1000000", "READ_RATE_PER_SECOND_PER_USER": "1000000"],
                        health: "127.0.0.1:\(streamerPort + 1000)")
        for index in 0..<replicas {
            try await start("engine", ["domain-engine"], ["DOMAIN_ENGINE_HEALTH_ADDR": "127.0.0.1:\(28482 + index)"],
                            health: "127.0.0.1:\(28482 + index)")
        }
        try await start("sink", ["data-sink"], ["DATA_SINK_HEALTH_ADDR": "127.0.0.1:28490"], health: "127.0.0.1:28490")

        let clients = EpollSSEClientGroup(readers: 2, port: streamerPort, path: "/events?group_id=\(group.rawValue)", token: token)
        let opened = try await clients.open(listeners, eventsBefore: 0)
        guard opened.opened == listeners else { throw ValidationError("only \(opened.opened) of \(listeners) streams opened") }
        try await Task.sleep(for: .seconds(1))

        let messages = try backlog(group, userID: userID.uuidString.lowercased(), username: username)
        let otherCommand = try backlog(other, userID: userID.uuidString.lowercased(), username: username, count: 1)
        func cpu() -> [Double] {
            let seconds: (String) -> Double = { name in
                processes.filter { $0.0 == name }.reduce(0) { $0 + ProcessCPU.seconds(of: $1.1.processIdentifier) } }
            return [seconds("engine"), seconds("sink"), seconds("streamer"),
                    ProcessCPU.pids(named: "nats-server").reduce(0) { $0 + ProcessCPU.seconds(of: $1) },
                    ProcessCPU.pids(named: "postgres").reduce(0) { $0 + ProcessCPU.seconds(of: $1) }]
        }
        let cpuStart = cpu()
        let start = ContinuousClock.now
        let startNanoseconds = UInt64(bench_realtime_ns())
        let results = await nats.jetStream.publishBatch(messages)
        guard results.allSatisfy({ (try? $0.get()) != nil }) else { throw ValidationError("some commands were not stored") }
        var round = Round()
        round.published = (ContinuousClock.now - start).seconds
        let otherSent = ContinuousClock.now
        _ = try await nats.jetStream.publish(otherCommand[0])

        let total = Int64(commands)
        let deadline = ContinuousClock.now + .seconds(600)
        var lastReport = ContinuousClock.now
        while round.decided == 0 || round.projected == 0 || round.otherGroup == 0 {
            guard ContinuousClock.now < deadline else { throw ValidationError("the backlog was not done within 10 minutes") }
            if round.otherGroup == 0, try await version(of: other, nats) >= 1 { round.otherGroup = (ContinuousClock.now - otherSent).seconds }
            if round.decided == 0, try await version(of: group, nats) >= total { round.decided = (ContinuousClock.now - start).seconds }
            if round.projected == 0 {
                let rows = try await pool.query("SELECT group_version FROM group_projection_offsets WHERE group_id = $1", group.rawValue)
                if try rows.first?.decode(Int64.self, "group_version") ?? 0 >= total { round.projected = (ContinuousClock.now - start).seconds }
            }
            if ContinuousClock.now - lastReport > .seconds(2) {
                lastReport = .now
                print("  decided \(try await version(of: group, nats)) / \(total)")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        let arrivals = try await clients.arrivals(waitingFor: commands, timeout: .seconds(600), skippingClosed: true)
        let complete = arrivals.filter { $0.1.count >= commands }
        print("  listeners: \(complete.count) complete; the others stopped after \(arrivals.filter { $0.1.count < commands }.map(\.1.count).sorted()) events")
        round.dropped = listeners - complete.count
        if let lastArrival = complete.map({ $0.1[commands - 1].received }).max() {
            round.delivered = Double(lastArrival &- startNanoseconds) / 1e9
        }
        round.cpu = zip(cpu(), cpuStart).map { $0 - $1 }
        round.messages = Int(try await nats.jetStream.streamInfo(Streams.events).messages) - 1 // the other group's
        clients.closeAll()

        // Sustained: `sustainedRate` commands/s for `sustainedSeconds`, to fresh listeners; each
        // delivery timed from its command's publish to its arrival at the listener's socket.
        let live = EpollSSEClientGroup(readers: 2, port: streamerPort, path: "/events?group_id=\(group.rawValue)", token: token)
        let reopened = try await live.open(listeners, eventsBefore: commands)
        guard reopened.opened == listeners else { throw ValidationError("only \(reopened.opened) of \(listeners) streams opened") }
        try await Task.sleep(for: .seconds(1))
        let sustained = sustainedSeconds == 0 ? 0 : sustainedRate * sustainedSeconds
        let stream = try backlog(group, userID: userID.uuidString.lowercased(), username: username, from: commands, count: sustained)
        var sentAt = [UInt64](repeating: 0, count: sustained)
        let tick = 10 // ms
        let perTick = max(1, sustainedRate * tick / 1000)
        let sustainedCPUStart = cpu()
        let sustainedStart = ContinuousClock.now
        var pending: [Task<Bool, Never>] = []
        for (index, chunkStart) in stride(from: 0, to: sustained, by: perTick).enumerated() {
            let due = sustainedStart + .milliseconds(tick * index)
            if due > .now { try await Task.sleep(until: due, clock: .continuous) }
            let chunk = Array(stream[chunkStart..<min(chunkStart + perTick, sustained)])
            let now = UInt64(bench_realtime_ns())
            for offset in chunk.indices { sentAt[chunkStart + offset] = now }
            let jetStream = nats.jetStream
            pending.append(Task { await jetStream.publishBatch(chunk).allSatisfy { (try? $0.get()) != nil } })
        }
        for task in pending { guard await task.value else { throw ValidationError("some commands were not stored") } }
        let liveArrivals = try await live.arrivals(waitingFor: commands + sustained, timeout: .seconds(300), skippingClosed: true)
        let sustainedSpan = (ContinuousClock.now - sustainedStart).seconds
        round.sustainedCPU = zip(cpu(), sustainedCPUStart).map { $0 - $1 }
        var latency = LatencyHistogram()
        var kept = 0
        var lastSustained: UInt64 = 0
        for (before, perClient) in liveArrivals where perClient.count >= commands + sustained - before {
            kept += 1
            for (offset, arrival) in perClient.enumerated() where before + offset >= commands {
                latency.record(nanoseconds: arrival.received &- sentAt[before + offset - commands])
                lastSustained = max(lastSustained, arrival.received)
            }
        }
        round.sustainedDropped = listeners - kept
        round.sustainedLatency = latency
        round.sustainedDelivered = Double(sustained) / (Double(lastSustained &- sentAt[0]) / 1e9)
        live.closeAll()

        // A cold load of the group's state, as an engine that restarts does: every event, in runs.
        let loadStart = ContinuousClock.now
        let history = try await JetStreamEventStore(jetStream: nats.jetStream, logger: .init(label: "bench")).history(of: group)
        var state = GroupState(groupID: group.rawValue)
        for stored in history.events { Decider.apply(stored.event, to: &state) }
        round.load = (ContinuousClock.now - loadStart).seconds
        round.loadedEvents = history.events.count
        print("  sustained: \(sustained) commands in \(String(format: "%.1f", sustainedSpan)) s; publish → SSE p50/p90/p99/p99.9/max \(latency.summary) ms; \(kept) listeners kept up")
        for index in 0..<replicas {
            if let metrics = try? shell(["curl", "-s", "http://127.0.0.1:\(28482 + index)/metrics"]) {
                let wanted = ["engine_sequence_conflicts_total", "engine_commands_decided_from_log_total", "engine_group_refreshes_total",
                              "engine_group_loads_total", "engine_events_per_append_count", "engine_events_per_append_sum",
                              "engine_commands_total", "engine_run_size_count", "engine_run_size_sum", "engine_batch_size_count", "engine_batch_size_sum"]
                let lines = metrics.split(separator: "\n").filter { line in wanted.contains { line.hasPrefix($0) } }
                print("  engine \(index): " + lines.joined(separator: ", "))
            }
        }
        if let metrics = try? shell(["curl", "-s", "http://127.0.0.1:\(streamerPort + 1000)/metrics"]) {
            let wanted = ["sse_replays_total", "sse_replayed_events_total", "sse_slow_clients_dropped_total", "sse_undecodable_events_total"]
            let lines = metrics.split(separator: "\n").filter { line in wanted.contains { line.hasPrefix($0) } }
            print("  streamer: " + lines.joined(separator: ", "))
        }
        print(String(format: "  published %.2f s, decided %.2f s, projected %.2f s, delivered %.2f s; other group %.0f ms",
                     round.published, round.decided, round.projected, round.delivered, round.otherGroup * 1000))
        return round
    }

    private func version(of group: GroupID, _ nats: NATSConnection) async throws -> Int64 {
        guard let last = try await nats.jetStream.lastMessage(stream: Streams.events, subject: GroupSubject.event(group).subject)
        else { return 0 }
        return try EventMessage.decode(last.payload).last?.groupVersion ?? 0
    }

    /// The group's commands: the owner joins, then per five commands one todo is created, updated
    /// twice and moved twice.
    private func backlog(_ group: GroupID, userID: String, username: String, from first: Int = 0, count: Int? = nil) throws -> [OutgoingMessage] {
        let count = count ?? commands
        let subject = GroupSubject.command(group).subject
        return (first..<(first + count)).map { index in
            var command = TodoCommand(commandID: "\(group.rawValue)-\(index)", action: .createTodo, groupID: group.rawValue,
                                      todoID: "t\(index / 5)", actorUserID: userID, actorName: username, issuedAt: Date())
            switch index % 5 {
            case _ where index == 0:
                command.action = .addMember
                command.memberUserID = userID; command.memberUsername = username; command.role = .owner; command.todoID = nil
            case 0: command.title = "todo \(index)"
            case 1, 3: command.action = .updateTodo; command.notes = "notes \(index)"
            case 2: command.action = .moveTodo; command.status = .inProgress
            default: command.action = .moveTodo; command.status = .done
            }
            return OutgoingMessage(subject: subject, payload: command.jsonData(), msgID: command.commandID)
        }
    }

    /// Microseconds per decide + apply of an update, against 100 and 100,000 todos.
    private func decideCost() throws -> (small: Double, large: Double) {
        func measure(todos: Int) -> Double {
            var state = GroupState(groupID: "decide-bench")
            state.members["u1"] = .owner
            for index in 0..<todos {
                state.todos["t\(index)"] = TodoState(todoID: "t\(index)", title: "todo \(index)", notes: "", status: .todo,
                                                    position: Double(index), assignee: nil, labels: ["x"], createdBy: "u1",
                                                    createdByName: "olivia", createdAt: Date(), version: 1, isDeleted: false)
            }
            state.liveTodos = todos
            let now = Date()
            let count = 20_000
            let start = ContinuousClock.now
            for index in 0..<count {
                var command = TodoCommand(commandID: "d\(index)", action: .updateTodo, groupID: "decide-bench",
                                          todoID: "t\(index % todos)", actorUserID: "u1", actorName: "olivia", issuedAt: now)
                command.title = "renamed \(index)"
                guard case .emit(let event) = Decider.decide(state, command, now: now) else { continue }
                Decider.apply(event, to: &state)
            }
            return (ContinuousClock.now - start).seconds * 1e6 / Double(count)
        }
        _ = measure(todos: 100) // warm-up
        return (measure(todos: 100), measure(todos: 100_000))
    }
}
