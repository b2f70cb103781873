import CommandAPI
import Contracts
import Foundation
import Testing

/// Reminders through the pipeline (DESIGN §9): set through command-api in the user's profile zone,
/// cleared, refused on a done todo, and fired once by the engine at their time however often a
/// `fire-reminder` for them arrives.
@Suite("Reminders", .serialized)
struct RemindersIntegrationTests {
    @Test func aReminderIsSetInTheProfileZoneAndFiresExactlyOnce() async throws {
        try await CommandAPIHarness.with(pipeline: true) { api, nats, pool in
            let alice = try await api.register("alice")
            _ = try await api.call(.patch, "/api/v1/me", token: alice.token, ["timezone": "Australia/Lord_Howe"])
            let group = try await api.createGroup(alice, name: "Times")
            func command(_ body: [String: Any]) async throws -> CommandAPIHarness.Client.Answer {
                var body = body
                body["group_id"] = group
                return try await api.call(.post, "/api/v1/command", token: alice.token, body)
            }
            let todo = try await command(["action": "create-todo", "title": "Call the venue"]).json["todo_id"] as? String ?? ""
            let done = try await command(["action": "create-todo", "title": "Done already", "status": "done"]).json["todo_id"] as? String ?? ""
            #expect(try await command(["action": "set-reminder", "todo_id": todo, "remind_at": "2031-10-05T02:15"]).status == .accepted)
            #expect(try await command(["action": "set-reminder", "todo_id": done, "remind_at": "2031-10-05T09:00"]).status == .accepted)
            #expect(try await command(["action": "set-reminder", "todo_id": todo, "remind_at": "2031-02-30T09:00"]).status == .badRequest)
            #expect(try await command(["action": "set-reminder", "todo_id": todo, "remind_at": "2031-10-05T09:00", "timezone": "GMT+1"]).status == .badRequest)
            #expect(try await command(["action": "set-reminder", "todo_id": todo]).status == .badRequest)
            #expect(try await command(["action": "clear-reminder", "todo_id": todo, "expected_version": 1]).status == .badRequest)
            try await Projection.waitForVersion(pool, group: group, atLeast: 5)
            let set = try await pool.query("""
                SELECT payload->>'remind_at' AS remind_at, payload->>'timezone' AS zone, payload->>'fire_at' AS fire_at, payload->>'title' AS title
                FROM todo_events WHERE group_id = $1 AND event_type = 'reminder.set'
                """, group)
            #expect(set.count == 1)
            #expect(try set.first?.decode(String.self, "zone") == "Australia/Lord_Howe", "the profile's zone")
            #expect(try set.first?.decode(String.self, "remind_at") == "2031-10-05T02:15:00")
            // 02:15 falls in Lord Howe's 30-minute spring-forward gap: read with the offset before it (+10:30).
            #expect(try set.first?.decode(String.self, "fire_at") == "2031-10-04T15:45:00.000Z")
            #expect(try set.first?.decode(String.self, "title") == "Call the venue")
            let events = try await Projection.events(pool, group: group)
            #expect(events.last?.type == "command.rejected" && events.last?.code == "invalid_command", "no reminder on a done todo")

            // A reminder due in a second, then the scheduler's command for it three times.
            let soon = Date().addingTimeInterval(5)
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
            #expect(try await command(["action": "set-reminder", "todo_id": todo, "remind_at": formatter.string(from: soon),
                                       "timezone": "UTC"]).status == .accepted)
            try await Projection.waitForVersion(pool, group: group, atLeast: 6)
            #expect(try await Projection.events(pool, group: group).last?.type == "reminder.set", "set in time")
            let fireAtText = try await pool.query("""
                SELECT payload->>'fire_at' AS fire_at FROM todo_events WHERE group_id = $1 AND group_version = 6
                """, group)[0].decode(String.self, "fire_at")
            let parser = ISO8601DateFormatter()
            parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let fireAt = try #require(parser.date(from: fireAtText))
            try await Task.sleep(for: .seconds(min(10, max(0, fireAt.timeIntervalSinceNow) + 0.2)))
            var writer = CommandWriter(jetStream: nats.jetStream, groupID: group)
            for _ in 0..<3 {
                try await writer.send(.fireReminder, actor: (alice.userID, alice.username), todo: todo) { $0.fireAt = fireAt }
            }
            try await Projection.waitForVersion(pool, group: group, atLeast: 9)
            let outcomes = try await Projection.events(pool, group: group).suffix(3)
            #expect(outcomes.map(\.type) == ["reminder.fired", "command.rejected", "command.rejected"], "\(outcomes)")
            #expect(outcomes.dropFirst().allSatisfy { $0.code == "no_reminder" }, "fired once, never twice")
            #expect(try await command(["action": "clear-reminder", "todo_id": todo]).status == .accepted)
            try await Projection.waitForVersion(pool, group: group, atLeast: 10)
            #expect(try await Projection.events(pool, group: group).last?.code == "no_reminder", "a fired reminder is gone")
        }
    }
}
