import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Postgres
import Synchronization

/// `todo-bench e2e`: the load generator. Against a running system (the four services, as
/// `make run-all` starts them) it registers users, creates groups with a second member, opens SSE
/// listeners as those members, then drives `create-todo` commands:
///
/// 1. open-loop at a fixed rate (each request is due at its scheduled time; a slow server shows up
///    as latency measured from that time, not as less offered load), then
/// 2. closed-loop with C connections as fast as they go (the peak).
///
/// It measures commands accepted (202), events projected (rows in `todo_events`) and events
/// delivered over SSE per second; latency of POST → 202, POST → event in the read API (a few probe
/// groups polled every 10 ms), POST → event on another member's SSE stream; errors by kind; and at
/// the end that every accepted command has exactly one outcome. The raw JetStream and COPY limits
/// are measured in the same run, first.
struct E2EBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e", abstract: "End-to-end load: commands/s, projection and SSE delivery, latencies, next to the raw limits.")

    @Option var commandAPI = "http://127.0.0.1:8080"
    @Option var streamer = "http://127.0.0.1:8081"
    @OptionGroup var servers: BenchServers
    var natsURL: String { servers.natsURL }
    var databaseURL: String { servers.databaseURL }
    @Option(help: "Users registered; each group has an owner (who sends) and a second member (who listens).") var users = 100
    @Option var groups = 1000
    @Option(help: "SSE listeners, spread over the groups.") var listeners = 2000
    @Option(help: "Open-loop rate, commands per second.") var rate = 2000
    @Option(help: "Seconds of the open-loop phase.") var seconds = 60
    @Option(help: "Connections of the closed-loop phase (0 skips it). Fewer than ~256 leave the peak unmeasured: each command waits for its JetStream acknowledgement, so the rate is bounded by connections ÷ latency.") var peakConnections = 256
    @Option(help: "Seconds of the closed-loop phase.") var peakSeconds = 30
    @Option(help: "Groups whose events are polled through the read API.") var probeGroups = 8
    @Option(help: "Where the services' and servers' pid files are (for CPU per process).") var pidDirectory: String?
    @Option var output = "bench/results"

    func run() async throws {
        let api = try Endpoint(commandAPI), stream = try Endpoint(streamer)
        print("raw limits (same run):")
        let rawPublish = try await RawLimits.publish(natsURL: natsURL)
        let rawFetch = try await RawLimits.fetchAck(natsURL: natsURL)
        let rawCopy = try await RawLimits.copy(databaseURL: databaseURL)
        print("  publish \(Int(rawPublish)) msg/s, fetch+ack \(Int(rawFetch)) msg/s, COPY \(Int(rawCopy)) rows/s")

        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = HTTPLoadPool(host: api.host, port: api.port, group: loop, connections: max(256, peakConnections))
        let readPool = HTTPLoadPool(host: stream.host, port: stream.port, group: loop, connections: probeGroups * 2)
        let database = PostgresPool(url: databaseURL, maxConnections: 2)

        // Setup: users, groups (owner + member), listeners.
        let setupStart = ContinuousClock.now
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let sessions = try await registerUsers(pool: pool, tag: tag)
        let groupIDs = try await createGroups(pool: pool, sessions: sessions)
        print("setup: \(sessions.count) users, \(groupIDs.count) groups with two members each (\(String(format: "%.1f", (ContinuousClock.now - setupStart).seconds)) s)")
        let sse = SSEClients(group: loop, host: stream.host, port: stream.port)
        let requests = (0..<listeners).map { index in
            let group = index % groupIDs.count
            return SSEClients.request(host: stream.host, port: stream.port, path: "/events?group_id=\(groupIDs[group])",
                                      token: sessions[(group + 1) % sessions.count].token)
        }
        let opened = try await sse.open(requests)
        guard opened.refused == 0 else { throw ValidationError("\(opened.refused) SSE listeners refused") }
        print("listeners: \(listeners) SSE streams open")

        var report = Report(title: "End-to-end benchmark", header: ["measurement", "open loop", "closed loop (peak)"])
        let openLoop = try await phase(name: "open loop \(rate) cmd/s × \(seconds) s", pool: pool, readPool: readPool, database: database,
                                       sse: sse, sessions: sessions, groupIDs: groupIDs, mode: .openLoop(rate: rate, seconds: seconds))
        var closedLoop: PhaseResult?
        if peakConnections > 0 {
            closedLoop = try await phase(name: "closed loop, \(peakConnections) connections × \(peakSeconds) s", pool: pool, readPool: readPool,
                                         database: database, sse: sse, sessions: sessions, groupIDs: groupIDs,
                                         mode: .closedLoop(connections: peakConnections, seconds: peakSeconds))
        }

        // Nothing lost: every accepted command has exactly one outcome.
        let accepted = openLoop.accepted.merging(closedLoop?.accepted ?? [:]) { $1 }
        let outcomes = try await outcomeCounts(database: database, groups: groupIDs)
        let missing = accepted.keys.filter { outcomes[$0] == nil }.count
        let doubled = outcomes.filter { $0.value > 1 }.count
        let unknown = outcomes.keys.filter { accepted[$0] == nil }.count
        print("check: \(accepted.count) accepted, \(missing) without outcome, \(doubled) with more than one, \(unknown) outcomes for commands whose 202 was not seen")

        func cell(_ result: PhaseResult?, _ value: (PhaseResult) -> String) -> String { result.map(value) ?? "–" }
        let rows: [(String, (PhaseResult) -> String)] = [
            ("offered load", { $0.offered }),
            ("commands accepted (202) /s", { String(format: "%.0f", $0.acceptedRate) }),
            ("events projected (sink) /s", { String(format: "%.0f", $0.projectedRate) }),
            ("events delivered over SSE /s", { String(format: "%.0f", $0.deliveredRate) }),
            ("POST → 202: p50 / p90 / p99 / p99.9 / max (ms)", { $0.toAccepted.summary }),
            ("POST → event in read API (probe groups; polls every 10 ms, or a tenth of the wait up to 100 ms): p50 / p90 / p99 / p99.9 / max (ms)", { $0.toReadAPI.summary }),
            ("POST → event on another member's SSE stream: p50 / p90 / p99 / p99.9 / max (ms)", { $0.toSSE.summary }),
            ("errors", { $0.errorSummary }),
            ("CPU cores used while sending, by process (2 cores in all)", { $0.cpuSummary }),
            ("projection caught up after the phase in", { String(format: "%.1f s", $0.drainSeconds) }),
        ]
        for (label, value) in rows { report.rows.append([label, cell(openLoop, value), cell(closedLoop, value)]) }
        report.rows.append(["raw JetStream async publish (C, same run)", String(format: "%.0f msg/s", rawPublish), ""])
        report.rows.append(["raw JetStream fetch + ack (C, same run)", String(format: "%.0f msg/s", rawFetch), ""])
        report.rows.append(["raw Postgres COPY (same run)", String(format: "%.0f rows/s", rawCopy), ""])
        report.rows.append(["nothing lost", "\(accepted.count) accepted commands: \(missing) without an outcome, \(doubled) with two or more", ""])
        report.notes = [
            "Setup: \(sessions.count) users, \(groupIDs.count) groups (owner sends, a second member listens), \(listeners) SSE listeners spread over the groups; every command is a create-todo by the group's owner.",
            "Open loop: requests are due at fixed intervals and latency counts from the due time (no coordinated omission); up to 256 keep-alive connections. Closed loop: \(peakConnections) connections, each sending its next request when the previous answer arrives.",
            "Projected/s counts rows appearing in todo_events from the phase's start until the projection caught up; delivered/s counts todo-events received by the listeners over the same span.",
            "The load generator (1 event-loop thread), nats-server, Postgres and the four services all share the machine's cores.",
        ]
        sse.closeAll()
        pool.closeAll()
        readPool.closeAll()
        print(report.markdown())
        print("written to \(try report.write(to: output, name: "e2e"))")
        await database.shutdown()
        try await loop.shutdownGracefully()
        guard missing == 0, doubled == 0 else { throw ValidationError("lost or doubled outcomes (see above)") }
    }

    // MARK: setup

    struct Session: Sendable {
        let username: String
        let token: String
    }

    struct Endpoint {
        let host: String
        let port: Int
        init(_ url: String) throws {
            guard let parsed = URL(string: url), let host = parsed.host, let port = parsed.port else { throw ValidationError("bad URL \(url)") }
            self.host = host
            self.port = port
        }
    }

    func registerUsers(pool: HTTPLoadPool, tag: String) async throws -> [Session] {
        try await withThrowingTaskGroup(of: Session.self) { tasks in
            for index in 0..<users {
                tasks.addTask {
                    let username = "lg_\(tag)_\(index)"
                    let reply = try await retrying { try await pool.send(.POST, "/api/v1/auth/register",
                                                                          json: #"{"username":"\#(username)","password":"load-generator"}"#) }
                    guard reply.status == 201, let token = reply.json["access_token"] as? String else {
                        throw ValidationError("register \(username): \(reply.status) \(reply.text)")
                    }
                    return Session(username: username, token: token)
                }
            }
            var sessions: [Session] = []
            for try await session in tasks { sessions.append(session) }
            return sessions.sorted { $0.username < $1.username }
        }
    }

    func createGroups(pool: HTTPLoadPool, sessions: [Session]) async throws -> [String] {
        try await withThrowingTaskGroup(of: (Int, String).self) { tasks in
            for index in 0..<groups {
                tasks.addTask {
                    let owner = sessions[index % sessions.count], member = sessions[(index + 1) % sessions.count]
                    let auth = [("Authorization", "Bearer \(owner.token)")]
                    let created = try await retrying { try await pool.send(.POST, "/api/v1/groups", json: #"{"name":"load \#(index)"}"#, headers: auth) }
                    guard created.status == 201, let id = created.json["id"] as? String else { throw ValidationError("create group: \(created.text)") }
                    let added = try await retrying {
                        try await pool.send(.POST, "/api/v1/groups/\(id)/members", json: #"{"username":"\#(member.username)","role":"member"}"#, headers: auth)
                    }
                    guard added.status == 204 else { throw ValidationError("add member: \(added.status) \(added.text)") }
                    return (index, id)
                }
            }
            var ids = [String](repeating: "", count: groups)
            for try await (index, id) in tasks { ids[index] = id }
            return ids
        }
    }

    /// Retries a setup request answered 429 (rate limits), after the server's Retry-After.
    func retrying(_ send: () async throws -> HTTPLoadConnection.Reply) async throws -> HTTPLoadConnection.Reply {
        while true {
            let reply = try await send()
            guard reply.status == 429 else { return reply }
            let wait = Double(reply.headers.first(name: "Retry-After") ?? "1") ?? 1
            try await Task.sleep(for: .seconds(wait))
        }
    }

    // MARK: one phase

    enum Mode {
        case openLoop(rate: Int, seconds: Int)
        case closedLoop(connections: Int, seconds: Int)
    }

    struct PhaseResult {
        var offered = ""
        var accepted: [String: UInt64] = [:]          // command id → due/sent time (ns)
        var acceptedRate = 0.0
        var projectedRate = 0.0
        var deliveredRate = 0.0
        var drainSeconds = 0.0
        var toAccepted = LatencyHistogram()
        var toReadAPI = LatencyHistogram()
        var toSSE = LatencyHistogram()
        var errors: [String: Int] = [:]
        var cpu: [(String, Double)] = []
        var cpuSummary: String { cpu.filter { $0.1 >= 0.01 }.map { "\($0.0) \(String(format: "%.2f", $0.1))" }.joined(separator: ", ") }
        var errorSummary: String { errors.isEmpty ? "none" : errors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") }
    }

    /// Everything a phase's tasks record, behind one lock.
    final class Recorder: Sendable {
        struct State {
            var accepted: [String: UInt64] = [:]
            var toAccepted = LatencyHistogram()
            var errors: [String: Int] = [:]
            var sent = 0
        }
        let state = Mutex(State())
        func accepted(_ commandID: String, due: UInt64, answered: UInt64) {
            state.withLock { $0.accepted[commandID] = due; $0.toAccepted.record(nanoseconds: answered &- due); $0.sent += 1 }
        }
        func failed(_ kind: String) { state.withLock { $0.errors[kind, default: 0] += 1; $0.sent += 1 } }
    }

    func phase(name: String, pool: HTTPLoadPool, readPool: HTTPLoadPool, database: PostgresPool, sse: SSEClients,
               sessions: [Session], groupIDs: [String], mode: Mode) async throws -> PhaseResult {
        print("phase: \(name)")
        _ = try await sse.drainReceived()
        let recorder = Recorder()
        let rowsBefore = try await eventRows(database: database, groups: groupIDs)
        let cpu = ProcessCPU(pidDirectory: pidDirectory)
        let cpuBefore = cpu.snapshot()
        let start = DispatchTime.now().uptimeNanoseconds
        // Each probed group is read with its owner's token (the sender of its commands).
        let probed = (0..<min(probeGroups, groupIDs.count)).map { (group: groupIDs[$0], token: sessions[$0 % sessions.count].token) }
        let probes = ReadAPIProbes(groups: probed, pool: readPool)
        // Where each probed group's history stands, read before anything is sent: an event the
        // start already included would never be seen, and its group would be polled to the end.
        let startVersions = await probes.currentVersions()
        let probing = Task { await probes.run(from: startVersions) }
        let progress = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                let (sent, accepted, errors) = recorder.state.withLock { ($0.sent, $0.accepted.count, $0.errors.values.reduce(0, +)) }
                print("  \(String(format: "%5.1f", Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)) s: \(sent) sent, \(accepted) accepted, \(errors) errors")
            }
        }

        var offered = ""
        switch mode {
        case .openLoop(let rate, let seconds):
            offered = "\(rate) cmd/s for \(seconds) s"
            let total = rate * seconds
            let interval = 1e9 / Double(rate)
            await withTaskGroup(of: Void.self) { tasks in
                for index in 0..<total {
                    let due = start + UInt64(Double(index) * interval)
                    let now = DispatchTime.now().uptimeNanoseconds
                    if due > now + 1_000_000 { try? await Task.sleep(for: .nanoseconds(Int(due - now))) }
                    tasks.addTask {
                        await self.sendOne(index: index, due: due, pool: pool, sessions: sessions, groupIDs: groupIDs,
                                           recorder: recorder, probes: probes)
                    }
                }
            }
        case .closedLoop(let connections, let seconds):
            offered = "\(connections) connections for \(seconds) s"
            let end = start + UInt64(seconds) * 1_000_000_000
            await withTaskGroup(of: Void.self) { tasks in
                for connection in 0..<connections {
                    tasks.addTask {
                        var index = connection
                        while DispatchTime.now().uptimeNanoseconds < end {
                            defer { index += connections }
                            await self.sendOne(index: index, due: DispatchTime.now().uptimeNanoseconds, pool: pool, sessions: sessions,
                                               groupIDs: groupIDs, recorder: recorder, probes: probes)
                        }
                    }
                }
            }
        }
        let sendingEnded = DispatchTime.now().uptimeNanoseconds
        progress.cancel()
        var result = PhaseResult()
        result.cpu = ProcessCPU.cores(from: cpuBefore, to: cpu.snapshot(), over: Double(sendingEnded - start) / 1e9)
        result.offered = offered
        (result.accepted, result.toAccepted, result.errors) = recorder.state.withLock { ($0.accepted, $0.toAccepted, $0.errors) }
        result.acceptedRate = Double(result.accepted.count) / (Double(sendingEnded - start) / 1e9)

        // Wait for the projection to catch up with everything accepted in this phase.
        let target = rowsBefore + result.accepted.count
        var rows = rowsBefore
        let deadline = ContinuousClock.now + .seconds(300)
        while rows < target && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            rows = try await eventRows(database: database, groups: groupIDs)
        }
        let caughtUp = DispatchTime.now().uptimeNanoseconds
        result.drainSeconds = Double(caughtUp - sendingEnded) / 1e9
        result.projectedRate = Double(rows - rowsBefore) / (Double(caughtUp - start) / 1e9)
        try await Task.sleep(for: .milliseconds(500)) // the last SSE deliveries and probe polls
        probing.cancel()
        _ = await probing.value

        let received = try await sse.drainReceived()
        result.deliveredRate = Double(received.count) / (Double(caughtUp - start) / 1e9)
        for (commandID, at) in received { if let due = result.accepted[commandID] { result.toSSE.record(nanoseconds: at &- due) } }
        for (commandID, at) in probes.seen() { if let due = result.accepted[commandID] { result.toReadAPI.record(nanoseconds: at &- due) } }
        result.errors.merge(probes.failureKinds()) { $0 + $1 }
        print("  CPU cores: \(result.cpuSummary)")
        print("  accepted \(Int(result.acceptedRate))/s, projected \(Int(result.projectedRate))/s, delivered \(Int(result.deliveredRate))/s; "
              + "202 \(result.toAccepted.summary) ms; SSE \(result.toSSE.summary) ms; errors: \(result.errorSummary)")
        return result
    }

    func sendOne(index: Int, due: UInt64, pool: HTTPLoadPool, sessions: [Session], groupIDs: [String], recorder: Recorder,
                 probes: ReadAPIProbes) async {
        let group = index % groupIDs.count
        let owner = sessions[group % sessions.count]
        let body = #"{"action":"create-todo","group_id":"\#(groupIDs[group])","title":"load \#(index)"}"#
        // Before the request, so the probe is polling by the time the event can appear.
        probes.willSend(toGroupAt: group)
        do {
            let reply = try await pool.send(.POST, "/api/v1/command", json: body, headers: [("Authorization", "Bearer \(owner.token)")])
            let answered = DispatchTime.now().uptimeNanoseconds
            if reply.status == 202, let commandID = reply.json["command_id"] as? String {
                recorder.accepted(commandID, due: due, answered: answered)
            } else {
                probes.refused(toGroupAt: group)
                recorder.failed("HTTP \(reply.status)")
            }
        } catch {
            probes.refused(toGroupAt: group)
            recorder.failed("connection: \(type(of: error))")
        }
    }

    // MARK: database checks

    func eventRows(database: PostgresPool, groups: [String]) async throws -> Int {
        let list = "{" + groups.joined(separator: ",") + "}"
        return try await database.withConnection { connection in
            try connection.query("SELECT count(*) AS n FROM todo_events WHERE group_id = ANY($1::text[]) AND event_type IN ('todo.created', 'command.rejected')",
                                 list).map { try $0.decode(Int.self, "n") }.first ?? 0
        }
    }

    func outcomeCounts(database: PostgresPool, groups: [String]) async throws -> [String: Int] {
        let list = "{" + groups.joined(separator: ",") + "}"
        let rows = try await database.withConnection { connection in
            try connection.query("""
                SELECT command_id, count(*) AS n FROM todo_events
                WHERE group_id = ANY($1::text[]) AND event_type IN ('todo.created', 'command.rejected')
                GROUP BY command_id
                """, list).map { (try $0.decode(String.self, "command_id"), try $0.decode(Int.self, "n")) }
        }
        return Dictionary(rows, uniquingKeysWith: +)
    }
}

/// Polls a few groups' history through the streamer's read API while a command sent to the group
/// has not shown up there yet, and notes when each command's event first appears.
///
/// The probes are part of the load, so they poll only while something is awaited, and no more
/// often than the precision asks for: every 10 ms, or a tenth of the time waited since the
/// group's last new event, up to 100 ms. A wait of 50 ms is measured to within 10 ms, a wait of a
/// second to within 100 ms. (Polling 8 groups every 10 ms all the time was 800 reads per second
/// beside the 2,000 commands per second under test.)
final class ReadAPIProbes: Sendable {
    let groups: [(group: String, token: String)]
    let pool: HTTPLoadPool
    private let firstSeen = Mutex<[String: UInt64]>([:])
    private struct Wait {
        /// Commands sent to the group whose event has not been seen yet.
        var awaited = 0
        /// When the current wait began: its first awaited command, or the group's last new event.
        var since: UInt64 = 0
    }
    /// Per probed group.
    private let waits: Mutex<[Wait]>

    /// Answers other than 200, by status: a probe that cannot read its group measures nothing.
    private let failures = Mutex<[Int: Int]>([:])

    init(groups: [(group: String, token: String)], pool: HTTPLoadPool) {
        self.groups = groups
        self.pool = pool
        waits = Mutex(Array(repeating: Wait(), count: groups.count))
    }

    func seen() -> [(String, UInt64)] { firstSeen.withLock { $0.map { ($0.key, $0.value) } } }

    /// "HTTP 403: 12" for each status other than 200 the probes were answered.
    func failureKinds() -> [String: Int] {
        failures.withLock { Dictionary(uniqueKeysWithValues: $0.map { ("read API probe: HTTP \($0.key)", $0.value) }) }
    }

    private func read(_ index: Int, after: Int64) async -> [String: Any]? {
        let (group, token) = groups[index]
        guard let reply = try? await pool.send(.GET, "/api/v1/groups/\(group)/events?after=\(after)&limit=1000",
                                               headers: [("Authorization", "Bearer \(token)")]) else { return nil }
        guard reply.status == 200 else {
            failures.withLock { $0[reply.status, default: 0] += 1 }
            return nil
        }
        return reply.json
    }

    /// A command is about to be sent to the group at `index` of the phase's groups.
    func willSend(toGroupAt index: Int) {
        guard index < groups.count else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        waits.withLock { waits in
            if waits[index].awaited == 0 { waits[index].since = now }
            waits[index].awaited += 1
        }
    }

    /// That command was not accepted: no event will come for it.
    func refused(toGroupAt index: Int) {
        guard index < groups.count else { return }
        settle(index, 1)
    }

    /// `count` awaited events arrived (at `now`, which starts the next wait), or one never will.
    private func settle(_ index: Int, _ count: Int, at now: UInt64? = nil) {
        waits.withLock { waits in
            // Never below zero: a command refused by a dropped connection may have been stored after all.
            waits[index].awaited = max(0, waits[index].awaited - count)
            if let now { waits[index].since = now }
        }
    }

    private func isAwaiting(_ index: Int) -> Bool { waits.withLock { $0[index].awaited > 0 } }

    /// A tenth of the time waited, between 10 and 100 ms.
    private func pollInterval(_ index: Int, now: UInt64) -> UInt64 {
        let waited = now &- waits.withLock { $0[index].since }
        return min(100_000_000, max(10_000_000, waited / 10))
    }

    /// Each group's current version (the `after` its polls start from).
    func currentVersions() async -> [Int64] {
        var versions: [Int64] = []
        for index in groups.indices {
            var after: Int64 = 0
            while let json = await read(index, after: after), let next = (json["next_after"] as? NSNumber)?.int64Value, next > after {
                after = next
            }
            versions.append(after)
        }
        return versions
    }

    func run(from versions: [Int64]) async {
        await withTaskGroup(of: Void.self) { tasks in
            for index in groups.indices {
                tasks.addTask { await self.poll(index, after: versions[index]) }
            }
        }
    }

    private func poll(_ index: Int, after start: Int64) async {
        var after = start
        while !Task.isCancelled {
            guard isAwaiting(index) else {
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            try? await Task.sleep(for: .nanoseconds(Int(pollInterval(index, now: DispatchTime.now().uptimeNanoseconds))))
            guard let json = await read(index, after: after) else { continue }
            let now = DispatchTime.now().uptimeNanoseconds
            if let events = json["events"] as? [[String: Any]] {
                let new = firstSeen.withLock { seen in
                    var new = 0
                    for event in events {
                        if let id = event["command_id"] as? String, seen[id] == nil { seen[id] = now; new += 1 }
                    }
                    return new
                }
                if new > 0 { settle(index, new, at: now) }
            }
            after = (json["next_after"] as? NSNumber)?.int64Value ?? after
        }
    }
}
