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
}
