import CommandAPI
import Contracts
import Foundation
import HTTPTypes
import Logging
import Postgres
import Testing

/// DESIGN §5's text rules, the caps and the idempotency rules, over HTTP against real servers.
@Suite("command-api against odd input, caps and reused keys", .serialized)
struct CommandAPIHostileInputTests {
    @Test func oddTextIsA400NamingTheFieldNeverA500() async throws {
        try await CommandAPIHarness.with { client, _, _ in
            let alice = try await client.register("alice")
            let nul = try await client.call(.post, "/api/v1/groups", token: alice.token, ["name": "\u{0}"])
            #expect(nul.status == .badRequest && nul.error.hasPrefix("name: must not contain control characters"), "\(nul.json)")
            // "a" and 99 combining accents is "á" and 98 once composed: 99 characters, allowed;
            // with 150 accents it is 150 characters (the table's check agrees, so never a 500).
            let stacked = try await client.call(.post, "/api/v1/groups", token: alice.token,
                                                ["name": "a" + String(repeating: "\u{301}", count: 99)])
            #expect(stacked.status == .created, "\(stacked.json)")
            let tooMany = try await client.call(.post, "/api/v1/groups", token: alice.token,
                                                ["name": "a" + String(repeating: "\u{301}", count: 150)])
            #expect(tooMany.status == .badRequest && tooMany.error.hasPrefix("name: must be at most 100 characters"), "\(tooMany.json)")
            let group = try await client.createGroup(alice)
            for (body, field) in [
                (["action": "create-todo", "group_id": group, "title": "a\u{0}b"], "title"),
                (["action": "create-todo", "group_id": group, "title": "x", "labels": ["\u{0}"]], "labels"),
                (["action": "create-todo", "group_id": group, "title": "x", "notes": "bell\u{7}"], "notes"),
            ] as [([String: Any], String)] {
                let answer = try await client.call(.post, "/api/v1/command", token: alice.token, body)
                #expect(answer.status == .badRequest && answer.error.hasPrefix("\(field): "), "\(answer.json)")
            }
            let badKey = try await client.call(.post, "/api/v1/command", token: alice.token, key: "spaced key",
                                               ["action": "create-todo", "group_id": group, "title": "x"])
            #expect(badKey.status == .badRequest && badKey.error.hasPrefix("Idempotency-Key"))
            #expect(try await client.call(.get, "/api/v1/commands/a%00b", token: alice.token).status == .badRequest)
            let password = try await client.call(.post, "/api/v1/auth/register",
                                                 ["username": TestInfrastructure.unique("p").lowercased().prefix(30).description, "password": "correct\u{0}horse"])
            #expect(password.status == .badRequest && password.error.hasPrefix("password:"))
        }
    }

    @Test func aKeyReusedInAnotherGroupIsACommandOfItsOwn() async throws {
        try await CommandAPIHarness.with(pipeline: true) { client, _, _ in
            let alice = try await client.register("alice")
            let first = try await client.createGroup(alice, name: "First")
            let second = try await client.createGroup(alice, name: "Second")
            let key = "key-\(UUID().uuidString)"
            let a = try await client.call(.post, "/api/v1/command", token: alice.token, key: key,
                                          ["action": "create-todo", "group_id": first, "title": "same"])
            let b = try await client.call(.post, "/api/v1/command", token: alice.token, key: key,
                                          ["action": "create-todo", "group_id": second, "title": "same"])
            // Within the record's 24 h a different request under the same key is a conflict …
            #expect(a.status == .accepted)
            #expect(b.status == .conflict, "\(b.json)")
            // … and once the record is gone, the other group's request is a command of its own,
            // with ids of its own, and it is applied (it used to collide with the first and vanish).
            let (pool, userID) = (try await TestInfrastructure.pool(maxConnections: 1), alice.userID)
            _ = try await pool.query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE user_id = $1::uuid AND key = $2", userID, key)
            await pool.shutdown()
            let c = try await client.call(.post, "/api/v1/command", token: alice.token, key: key,
                                          ["action": "create-todo", "group_id": second, "title": "same"])
            #expect(c.status == .accepted)
            #expect(c.json["command_id"] as? String != a.json["command_id"] as? String)
            #expect(c.json["todo_id"] as? String != a.json["todo_id"] as? String)
            for answer in [a, c] {
                let status = try await settled(client, answer.json["command_id"] as? String ?? "", alice)
                #expect(status == "applied")
            }
        }
    }

    @Test func capsAnswer409() async throws {
        let environment = ["MAX_GROUPS_PER_USER": "2", "MAX_MEMBERS_PER_GROUP": "2", "MAX_TODOS_PER_GROUP": "1"]
        try await CommandAPIHarness.with(pipeline: true, environment: environment) { client, _, _ in
            let alice = try await client.register("alice")
            let bob = try await client.register("bob")
            let carol = try await client.register("carol")
            let group = try await client.createGroup(alice)
            _ = try await client.createGroup(alice)
            let third = try await client.call(.post, "/api/v1/groups", token: alice.token, ["name": "Third"])
            #expect(third.status == .conflict && third.error.contains("2 groups"), "\(third.json)")
            #expect(try await client.call(.post, "/api/v1/groups/\(group)/members", token: alice.token,
                                          ["username": bob.username, "role": "member"]).status == .noContent)
            let full = try await client.call(.post, "/api/v1/groups/\(group)/members", token: alice.token,
                                             ["username": carol.username, "role": "member"])
            #expect(full.status == .conflict && full.error.contains("2 members"), "\(full.json)")
            // Bob belongs to Alice's group and to one of his own: a third is past his limit.
            _ = try await client.createGroup(bob)
            let bobsThird = try await client.call(.post, "/api/v1/groups", token: bob.token, ["name": "Third"])
            #expect(bobsThird.status == .conflict)

            let todo = try await client.call(.post, "/api/v1/command", token: alice.token,
                                             ["action": "create-todo", "group_id": group, "title": "the one"])
            #expect(try await settled(client, todo.json["command_id"] as? String ?? "", alice) == "applied")
            let more = try await client.call(.post, "/api/v1/command", token: alice.token,
                                             ["action": "create-todo", "group_id": group, "title": "one too many"])
            #expect(more.status == .conflict && more.error.contains("1 todos"), "\(more.json)")

            // A username in the path is percent-decoded and trimmed like one in a body.
            #expect(try await client.call(.delete, "/api/v1/groups/\(group)/members/%20\(bob.username.uppercased())%09").status == .unauthorized)
            let removed = try await client.call(.delete, "/api/v1/groups/\(group)/members/%20\(bob.username.uppercased())%09", token: alice.token)
            #expect(removed.status == .noContent, "\(removed.json)")
        }
    }

    @Test func housekeepingPrunesWhatIsNoLongerNeeded() async throws {
        let pool = try await TestInfrastructure.pool(maxConnections: 2)
        try await CommandAPIHarness.with { client, _, _ in
            let alice = try await client.register("alice")
            _ = try await client.createGroup(alice)
            _ = try await pool.query("""
                INSERT INTO idempotency_keys (user_id, key, request_hash, command_id, shard, created_at)
                VALUES ($1::uuid, 'old', '\\x00', 'c-old', 1, now() - interval '25 hours'),
                       ($1::uuid, 'new', '\\x00', 'c-new', 1, now())
                """, alice.userID)
            _ = try await pool.query("""
                INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at, rotated_at) VALUES
                    ('\\x01'::bytea || gen_random_uuid()::text::bytea, $1::uuid, gen_random_uuid(), now() - interval '1 minute', NULL),
                    ('\\x02'::bytea || gen_random_uuid()::text::bytea, $1::uuid, gen_random_uuid(), now() + interval '20 days', now() - interval '2 days'),
                    ('\\x03'::bytea || gen_random_uuid()::text::bytea, $1::uuid, gen_random_uuid(), now() + interval '20 days', now() - interval '1 hour')
                """, alice.userID)
            _ = try await pool.query("UPDATE command_outbox SET published_at = now() - interval '2 hours' WHERE published_at IS NOT NULL")

            let deleted = try await Housekeeping(pool: pool, interval: .seconds(60), logger: Logger(label: "test")).sweep()
            #expect(deleted["idempotency_keys", default: 0] >= 1)
            #expect(deleted["refresh_tokens", default: 0] >= 2)
            #expect(deleted["command_outbox", default: 0] >= 1)
            let keys = try await pool.query("SELECT key FROM idempotency_keys WHERE user_id = $1::uuid ORDER BY key", alice.userID)
            #expect(try keys.map { try $0.decode(String.self, "key") } == ["new"])
            // Alice's own session and the token rotated an hour ago (reuse detection) remain.
            let tokens = try await pool.query("SELECT count(*)::bigint AS n FROM refresh_tokens WHERE user_id = $1::uuid", alice.userID)
            #expect(try tokens[0].decode(Int64.self, "n") == 2)
        }
        await pool.shutdown()
    }

    func settled(_ client: CommandAPIHarness.Client, _ id: String, _ session: CommandAPIHarness.Client.Session) async throws -> String {
        for _ in 0..<150 {
            let answer = try await client.call(.get, "/api/v1/commands/\(id)", token: session.token)
            if let status = answer.json["status"] as? String, status != "pending" { return status }
            try await Task.sleep(for: .milliseconds(100))
        }
        return "pending"
    }
}
