import CommandAPI
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import NIOCore
import Testing

/// The profile's time zone and the calendar's read (DESIGN §9) end to end: `GET`/`PATCH
/// /api/v1/me` on command-api, todos with due dates through the pipeline, read by day range from
/// the streamer, and a due date moved through the normal write path.
@Suite("Profile and calendar", .serialized)
struct CalendarIntegrationTests {
    typealias Client = CommandAPIHarness.Client

    @Test func theTimeZoneIsAnIANANameAndDefaultsToUTC() async throws {
        try await CommandAPIHarness.with(pipeline: false) { api, _, _ in
            let alice = try await api.register("alice")
            let me = try await api.call(.get, "/api/v1/me", token: alice.token)
            #expect(me.status == .ok && me.json["timezone"] as? String == "UTC" && me.json["username"] as? String == alice.username)
            #expect(me.json["user_id"] as? String == alice.userID)
            for zone in ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"] {
                let changed = try await api.call(.patch, "/api/v1/me", token: alice.token, ["timezone": zone])
                #expect(changed.status == .ok && changed.json["timezone"] as? String == zone, "\(zone): \(changed.json)")
            }
            _ = try await api.call(.patch, "/api/v1/me", token: alice.token, ["timezone": "Asia/Kathmandu"])
            #expect(try await api.call(.get, "/api/v1/me", token: alice.token).json["timezone"] as? String == "Asia/Kathmandu", "it is kept")
            for bad in ["GMT+1", "UTC+05:45", "Mars/Olympus_Mons", "", "europe/berlin", "Europe/Berlin\u{0}", String(repeating: "A", count: 65)] {
                let refused = try await api.call(.patch, "/api/v1/me", token: alice.token, ["timezone": bad])
                #expect(refused.status == .badRequest && refused.error.hasPrefix("timezone:"), "\(bad.debugDescription): \(refused.json)")
            }
            #expect(try await api.call(.patch, "/api/v1/me", token: alice.token, ["timezone": "UTC", "theme": "dark"]).status == .badRequest)
            #expect(try await api.call(.patch, "/api/v1/me", token: alice.token, ["timezone": 5]).status == .badRequest)
            #expect(try await api.call(.get, "/api/v1/me").status == .unauthorized)
            #expect(try await api.call(.get, "/api/v1/me", token: alice.token).json["timezone"] as? String == "Asia/Kathmandu",
                    "a refused change changes nothing")
        }
    }

    @Test func theCalendarReadsADayRangeAndFollowsADueDateMoved() async throws {
        try await StreamerIntegrationTests.withStreamer(pipeline: true) { api, streamerClient, _, _, _ in
            let streamer = Client(client: streamerClient)
            let alice = try await api.register("alice")
            let eve = try await api.register("eve")
            let group = try await api.createGroup(alice, name: "Dates")
            var ids: [String: String] = [:]
            for (title, due) in [("first", "2026-12-01"), ("mid", "2026-12-15"), ("also mid", "2026-12-15"), ("late", "2027-01-10"),
                                 ("undated", ""), ("gone", "2026-12-02")] {
                var body: [String: Any] = ["action": "create-todo", "group_id": group, "title": title]
                if !due.isEmpty { body["due_date"] = due }
                ids[title] = try await api.call(.post, "/api/v1/command", token: alice.token, body).json["todo_id"] as? String
            }
            _ = try await api.call(.post, "/api/v1/command", token: alice.token, ["action": "delete-todo", "group_id": group, "todo_id": ids["gone"]!])
            let pool = try await TestInfrastructure.pool(maxConnections: 2)
            try await Projection.waitForVersion(pool, group: group, atLeast: 8)

            func range(_ from: String, _ to: String, _ extra: String = "") async throws -> Client.Answer {
                try await streamer.call(.get, "/api/v1/todos?group_id=\(group)&due_from=\(from)&due_to=\(to)\(extra)", token: alice.token)
            }
            func titles(_ answer: Client.Answer) -> [String] { (answer.json["todos"] as? [[String: Any]] ?? []).compactMap { $0["title"] as? String } }
            let december = try await range("2026-12-01", "2026-12-31")
            #expect(december.status == .ok)
            #expect(titles(december).sorted() == ["also mid", "first", "mid"], "within the days, both ends included; no undated, no deleted")
            #expect((december.json["todos"] as? [[String: Any]])?.first?["due_date"] as? String == "2026-12-01", "by day")
            #expect(titles(try await range("2026-12-02", "2026-12-14")).isEmpty)
            #expect(titles(try await range("2027-01-10", "2027-01-10")) == ["late"])

            var walked: [String] = []
            var cursor: String?
            repeat {
                let page = try await range("2026-12-01", "2027-02-28", "&limit=1" + (cursor.map { "&cursor=\($0)" } ?? ""))
                walked += titles(page)
                cursor = page.json["next_cursor"] as? String
            } while cursor != nil && walked.count < 10
            #expect(walked.count == 4 && walked.first == "first" && walked.last == "late", "pages by day then id: \(walked)")

            for (from, to) in [("2026-12-01", "2027-03-03"), ("2026-12-31", "2026-12-01"), ("2026-02-30", "2026-03-01"), ("x", "2026-12-01")] {
                #expect(try await range(from, to).status == .badRequest, "\(from)…\(to)")
            }
            #expect(try await streamer.call(.get, "/api/v1/todos?group_id=\(group)&due_from=2026-12-01", token: alice.token).status == .badRequest)
            #expect(try await range("2026-12-01", "2026-12-31", "&deleted=true").status == .badRequest)
            #expect(try await range("2026-12-01", "2026-12-31", "&cursor=dDoxOng").status == .badRequest, "a trash cursor is not a calendar cursor")
            #expect(try await streamer.call(.get, "/api/v1/todos?group_id=\(group)&due_from=2026-12-01&due_to=2026-12-31", token: eve.token).status == .forbidden)

            // Moving a todo to another day is an update of its due date, read on its new day.
            _ = try await api.call(.post, "/api/v1/command", token: alice.token,
                                   ["action": "update-todo", "group_id": group, "todo_id": ids["late"]!, "due_date": "2026-12-24"])
            try await Projection.waitForVersion(pool, group: group, atLeast: 9)
            #expect(titles(try await range("2026-12-24", "2026-12-24")) == ["late"])
            await pool.shutdown()
        }
    }
    /// Read-your-writes: `min_version` makes the read wait until the projection has the version the
    /// caller saw live, and no longer than 2 s for one it never reaches.
    @Test func aReadWaitsForTheProjectionToReachTheVersionSeenLive() async throws {
        try await StreamerIntegrationTests.with { api, client, port, _ in
            let alice = try await api.register("alice")
            let group = try await api.createGroup(alice)
            let stream = try StreamerIntegrationTests.stream(port, group, alice)
            _ = await stream.next(within: .seconds(10)) { $0.name == "retry" }
            let created = try await api.call(.post, "/api/v1/command", token: alice.token,
                                             ["action": "create-todo", "group_id": group, "title": "Seen live", "due_date": "2031-03-04"])
            let todo = created.json["todo_id"] as? String ?? ""
            let event = try #require(await stream.next(within: .seconds(10)) {
                $0.name == "todo-event" && StreamerIntegrationTests.json($0)["todo_id"] as? String == todo
            })
            stream.close()
            let version = try #require(Int64(event.id ?? ""))
            func read(_ minVersion: String) async throws -> (HTTPResponse.Status, [String], Double) {
                let start = ContinuousClock.now
                let (status, ids) = try await client.execute(
                    uri: "/api/v1/todos?group_id=\(group)&due_from=2031-03-01&due_to=2031-03-31&min_version=\(minVersion)",
                    method: .get, headers: [.authorization: "Bearer \(alice.token)"], body: nil) { response in
                    let body = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
                    return (response.status, (body["todos"] as? [[String: Any]] ?? []).compactMap { $0["todo_id"] as? String })
                }
                let elapsed = ContinuousClock.now - start
                return (status, ids, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
            let (status, ids, _) = try await read(String(version))
            #expect(status == .ok && ids == [todo], "the version seen live is in the read")
            let (ahead, stillThere, waited) = try await read(String(version + 1000))
            #expect(ahead == .ok && stillThere == [todo], "a version never reached: what there is, after the wait")
            #expect(waited >= 1.5, "it waited for it (\(waited) s)")
            for bad in ["x", "-1", "1e3", String(repeating: "9", count: 19)] {
                #expect(try await read(bad).0 == .badRequest, "\(bad)")
            }
        }
    }
}
