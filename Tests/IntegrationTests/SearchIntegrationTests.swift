import CommandAPI
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Search (DESIGN §10) end to end: todos created through command-api, decided by the engine and
/// projected by the sink, found through the streamer's `GET /api/v1/search`.
@Suite("Search", .serialized)
struct SearchIntegrationTests {
    typealias Client = CommandAPIHarness.Client

    @Test func findsTheCallersTodosOnlyRankedWithAPrefixOfTheLastWord() async throws {
        try await StreamerIntegrationTests.withStreamer(pipeline: true) { api, streamerClient, _, _, _ in
            let streamer = Client(client: streamerClient)
            let alice = try await api.register("alice")
            let bob = try await api.register("bob")
            let mine = try await api.createGroup(alice, name: "Launch")
            let other = try await api.createGroup(bob, name: "Secret")
            func create(_ session: Client.Session, _ group: String, _ fields: [String: Any]) async throws -> String {
                var body = fields
                body["action"] = "create-todo"
                body["group_id"] = group
                let answer = try await api.call(.post, "/api/v1/command", token: session.token, body)
                #expect(answer.status == .accepted, "\(answer.json)")
                return answer.json["todo_id"] as? String ?? ""
            }
            let inTitle = try await create(alice, mine, ["title": "Plan the launch party"])
            let inLabel = try await create(alice, mine, ["title": "Budget review", "labels": ["planning"]])
            let inNotes = try await create(alice, mine, ["title": "Venue", "notes": "Call them first.\nThen plan the seating for 80 guests."])
            let gone = try await create(alice, mine, ["title": "Plan B (deleted)"])
            let punctuated = try await create(alice, mine, ["title": "Fix login.swift for ÜBER Straße"])
            _ = try await create(bob, other, ["title": "Plan to take over"])
            #expect(try await api.call(.post, "/api/v1/command", token: alice.token,
                                       ["action": "delete-todo", "group_id": mine, "todo_id": gone]).status == .accepted)
            let pool = try await TestInfrastructure.pool(maxConnections: 2)
            try await Projection.waitForVersion(pool, group: mine, atLeast: 7)
            try await Projection.waitForVersion(pool, group: other, atLeast: 2)
            await pool.shutdown()

            func search(_ session: Client.Session, _ q: String, limit: Int? = nil) async throws -> [[String: Any]] {
                var path = "/api/v1/search?q=" + (q.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? q)
                if let limit { path += "&limit=\(limit)" }
                let answer = try await streamer.call(.get, path, token: session.token)
                #expect(answer.status == .ok, "\(answer.json)")
                return answer.json["results"] as? [[String: Any]] ?? []
            }
            let plan = try await search(alice, "plan")
            #expect(plan.map { $0["todo_id"] as? String } == [inTitle, inLabel, inNotes],
                    "title, then label, then notes; the deleted todo and bob's group are not there")
            #expect(plan.first?["group_name"] as? String == "Launch" && plan.first?["status"] as? String == "todo")
            #expect((plan.last?["snippet"] as? String ?? "").contains("plan the seating"), "the snippet shows where the notes match")
            #expect(try await search(alice, "PLAN la").map { $0["todo_id"] as? String } == [inTitle], "all words, the last a prefix, any case")
            #expect(try await search(alice, "plan", limit: 1).count == 1)
            #expect(try await search(alice, "fix login").map { $0["todo_id"] as? String } == [punctuated], "a prefix of a punctuated word")
            #expect(try await search(alice, "über straße").map { $0["todo_id"] as? String } == [punctuated], "letters beyond ASCII, in any case")
            #expect(try await search(alice, "party venue").isEmpty, "every word must match")
            #expect(try await search(alice, "  !!  ").isEmpty, "no words, no results")
            #expect(try await search(alice, "'plan' | takeover:* & !(").isEmpty, "query syntax in q is only text: plan AND takeover…")
            #expect(try await search(bob, "plan").map { $0["title"] as? String } == ["Plan to take over"])

            #expect(try await streamer.call(.get, "/api/v1/search", token: alice.token).status == .badRequest)
            #expect(try await streamer.call(.get, "/api/v1/search?q=" + String(repeating: "a", count: 201), token: alice.token).status == .badRequest)
            #expect(try await streamer.call(.get, "/api/v1/search?q=plan&limit=0", token: alice.token).status == .badRequest)
            #expect(try await streamer.call(.get, "/api/v1/search?q=plan").status == .unauthorized)
        }
    }
}
