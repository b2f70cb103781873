import CommandAPI
import Foundation
import HTTPAPI
import Logging
import NATS
import Sharding
import Streamer
import Testing

/// Presence across streamer replicas (DESIGN §10): replica A is a whole streamer serving real SSE
/// streams; replica B is another replica's presence (its `Presence` and `PresenceService` on a NATS
/// connection of its own), which learns and tells only through core NATS, as another process
/// would. Heartbeat 1 s, TTL 3 s, so a crashed replica's viewers go within the test's bound.
@Suite("Presence across replicas", .serialized)
struct PresenceIntegrationTests {
    typealias Client = CommandAPIHarness.Client

    @Test func viewersAppearAndGoOnEveryReplica() async throws {
        let settings = ["PRESENCE_HEARTBEAT_SECONDS": "1", "PRESENCE_TTL_SECONDS": "3", "SSE_HEARTBEAT_SECONDS": "1"]
        try await StreamerIntegrationTests.withStreamer(pipeline: false, environment: settings) { api, streamerClient, port, nats, _ in
            let streamer = Client(client: streamerClient)
            let alice = try await api.register("alice")
            let bob = try await api.register("bob")
            let mallory = try await api.register("mallory")
            let group = try await api.createGroup(alice)
            #expect(try await api.call(.post, "/api/v1/groups/\(group)/members", token: alice.token,
                                       ["username": bob.username, "role": "member"]).status == .noContent)

            // Replica B.
            let bNATS = try await TestInfrastructure.nats(name: "replica-b")
            let bPresence = Presence(ttl: .seconds(3))
            let bService = PresenceService(presence: bPresence, connection: bNATS, fanout: GroupFanout(connection: bNATS, logger: Logger(label: "b")),
                                           heartbeat: .seconds(1), logger: Logger(label: "b"))
            let bSubscription = try await bService.subscribe()
            let bRunning = Task { await bService.run(with: bSubscription) }

            let online: @Sendable (Client.Session) async throws -> [String] = { session in
                try await streamer.call(.get, "/api/v1/groups/\(group)/presence", token: session.token).json["online"] as? [String] ?? []
            }
            #expect(try await online(alice) == [])

            // Alice opens the board on A: B knows within the bound.
            let stream = try StreamerIntegrationTests.stream(port, group, alice)
            let seen = try await Poll.seconds("B sees alice", timeout: .seconds(5)) { bPresence.online(group) == [alice.username] }
            #expect(try await online(alice) == [alice.username])

            // Bob views it through B: A's API and alice's stream say so.
            _ = bPresence.opened(group, userID: bob.userID, name: bob.username)
            await bService.changed(group)
            let both = [alice.username, bob.username].sorted()
            _ = try await Poll.seconds("A sees bob", timeout: .seconds(5)) { try await online(alice) == both }
            let signal = await stream.next(within: .seconds(5)) { event in
                event.name == "datastar-patch-signals" && event.data.joined().contains(bob.username)
            }
            #expect(signal != nil, "alice's open stream is told")

            // Alice closes the tab: gone from B.
            stream.close()
            let gone = try await Poll.seconds("B forgets alice", timeout: .seconds(5)) { bPresence.online(group) == [bob.username] }

            // B crashes (no goodbye): A forgets bob after the TTL.
            bRunning.cancel()
            await bSubscription.unsubscribe()
            let expired = try await Poll.seconds("A forgets bob") { try await online(alice) == [] }
            print("presence: seen on the other replica after \(String(format: "%.3f", seen ?? .infinity)) s, gone after \(String(format: "%.3f", gone ?? .infinity)) s, a crashed replica's viewers gone after \(String(format: "%.1f", expired ?? .infinity)) s (TTL 3 s)")

            #expect(try await streamer.call(.get, "/api/v1/groups/\(group)/presence", token: mallory.token).status == .forbidden,
                    "members only")
            await bNATS.drain()
        }
    }

    /// Two whole `todo streamer` processes, as deployed: a viewer on either is seen by both, its
    /// open streams are told, and a replica killed with its viewers loses them everywhere after
    /// the TTL.
    @Test func twoStreamerProcessesShareTheirViewers() async throws {
        try await CommandAPIHarness.with(pipeline: false) { api, _, _ in
            let alice = try await api.register("alice")
            let bob = try await api.register("bob")
            let group = try await api.createGroup(alice)
            #expect(try await api.call(.post, "/api/v1/groups/\(group)/members", token: alice.token,
                                       ["username": bob.username, "role": "member"]).status == .noContent)
            try FileManager.default.createDirectory(atPath: ".runtime/test/logs", withIntermediateDirectories: true)
            func start(_ name: String, port: Int) throws -> ChildProcess {
                try ChildProcess(name: "streamer", arguments: ["streamer"], environment: [
                    "NATS_URL": TestInfrastructure.natsURL, "DATABASE_URL": TestInfrastructure.databaseURL,
                    "JWT_PUBLIC_KEYS": TestInfrastructure.tokenKey.environment["JWT_PUBLIC_KEYS"]!,
                    "STREAMER_ADDR": "127.0.0.1:\(port)", "STREAMER_INTERNAL_ADDR": "127.0.0.1:\(port + 100)",
                    "PRESENCE_HEARTBEAT_SECONDS": "1", "PRESENCE_TTL_SECONDS": "3", "SSE_HEARTBEAT_SECONDS": "1", "LOG_LEVEL": "info",
                ], log: ".runtime/test/logs/presence-\(name).log")
            }
            let (portA, portB) = (18481, 18491)
            let a = try start("a", port: portA)
            let b = try start("b", port: portB)
            for port in [portA, portB] {
                _ = try await Poll.seconds("streamer on \(port) ready", timeout: .seconds(30)) { Self.get(port: port + 100, path: "/readyz").status == 200 }
            }
            func online(_ port: Int, _ session: Client.Session) -> [String] {
                let answer = Self.get(port: port, path: "/api/v1/groups/\(group)/presence", token: session.token)
                return ((try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any])?["online"] as? [String] ?? ["status \(answer.status)"]
            }
            let both = [alice.username, bob.username].sorted()
            let headers = { (session: Client.Session) in ["Authorization": "Bearer \(session.token)"] }

            let aliceOnA = try SSETestClient(port: portA, path: "/events?group_id=\(group)", headers: headers(alice))
            let bobOnB = try SSETestClient(port: portB, path: "/events?group_id=\(group)", headers: headers(bob))
            let seen = try await Poll.seconds("both replicas see both viewers", timeout: .seconds(5)) {
                online(portA, alice) == both && online(portB, bob) == both
            }
            let told = await aliceOnA.next(within: .seconds(5)) { event in
                event.name == "datastar-patch-signals" && event.data.joined().contains(bob.username)
            }
            #expect(told != nil, "alice's stream on A hears of bob on B")

            bobOnB.close()
            let gone = try await Poll.seconds("A forgets bob when he closes the tab", timeout: .seconds(5)) { online(portA, alice) == [alice.username] }

            let bobAgain = try SSETestClient(port: portB, path: "/events?group_id=\(group)", headers: headers(bob))
            _ = try await Poll.seconds("bob is back", timeout: .seconds(5)) { online(portA, alice) == both }
            b.signal(SIGKILL)
            _ = await b.wait()
            let expired = try await Poll.seconds("A forgets the killed replica's viewers", timeout: .seconds(10)) { online(portA, alice) == [alice.username] }
            print("presence, two processes: seen in \(String(format: "%.3f", seen ?? .infinity)) s, gone in \(String(format: "%.3f", gone ?? .infinity)) s, a killed replica's viewers gone in \(String(format: "%.1f", expired ?? .infinity)) s (TTL 3 s)")
            bobAgain.close()
            aliceOnA.close()
            a.signal(SIGTERM)
            _ = await a.wait()
        }
    }

    /// A GET with curl (the streamer processes are not in this process): status and body.
    static func get(port: Int, path: String, token: String? = nil) -> (status: Int, body: Data) {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        var arguments = ["-s", "-m", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        curl.arguments = arguments
        let out = Pipe()
        curl.standardOutput = out
        guard (try? curl.run()) != nil else { return (0, Data()) }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        guard let newline = data.lastIndex(of: UInt8(ascii: "\n")) else { return (0, Data()) }
        return (Int(String(decoding: data[(newline + 1)...], as: UTF8.self)) ?? 0, Data(data[..<newline]))
    }
}
