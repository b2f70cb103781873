import CommandAPI
import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Sessions end everywhere (DESIGN §11): command-api and a streamer in process, each with its own
/// revocation list fed from NATS and Postgres, as separate processes would be. Polling of Postgres
/// is set to five minutes, so a revocation seen within the test's deadline came over NATS.
@Suite("Sessions: revocation, password change, cookies", .serialized)
struct SessionIntegrationTests {
    typealias Client = CommandAPIHarness.Client
    static let settings = ["REVOCATION_POLL_SECONDS": "300", "SSE_HEARTBEAT_SECONDS": "1"]

    static func session(of token: String) -> UUID? {
        let part = token.split(separator: ".").dropFirst().first.map(String.init) ?? ""
        var base64 = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        let claims = Data(base64Encoded: base64).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        return (claims?["sid"] as? String).flatMap(UUID.init(uuidString:))
    }

    @Test func logoutEndsTheSessionsTokensAndStreamsOnEveryProcess() async throws {
        let other = try await CommandAPIHarness.start(environment: Self.settings) // another replica
        let otherRevocations = other.api.revocations
        var failure: (any Error)?
        do { try await Self.logoutFlow(otherRevocations) } catch { failure = error }
        await other.stop()
        if let failure { throw failure }
    }

    static func logoutFlow(_ otherRevocations: RevokedSessions) async throws {
        try await StreamerIntegrationTests.withStreamer(pipeline: false, environment: Self.settings) { api, streamerClient, port, _, _ in
            let streamer = Client(client: streamerClient)
            let alice = try await api.register("alice")
            let second = try await api.call(.post, "/api/v1/auth/login", ["username": alice.username, "password": "correct horse"])
            let secondToken = try #require(second.json["access_token"] as? String)
            let group = try await api.createGroup(alice)
            let stream = try StreamerIntegrationTests.stream(port, group, alice)
            #expect(await stream.next(within: .seconds(10)) { $0.name == "retry" } != nil, "the stream is open")
            #expect(try await streamer.call(.get, "/api/v1/groups", token: alice.token).status == .ok)

            #expect(try await api.call(.post, "/api/v1/auth/logout", ["refresh_token": alice.refresh]).status == .noContent)
            let session = try #require(Self.session(of: alice.token))
            #expect(try await api.call(.get, "/api/v1/commands/none", token: alice.token).status == .unauthorized, "this replica: at once")
            let elsewhere = try await Poll.seconds {
                try await streamer.call(.get, "/api/v1/groups", token: alice.token).status == .unauthorized
                    && otherRevocations.isRevoked(session)
            }
            #expect(elsewhere != nil, "the streamer and the other replica refuse the token")
            #expect(await stream.ended(within: .seconds(10)), "the open stream ends")
            print("revocation reached the other processes after \(elsewhere.map { String(format: "%.3f s", $0) } ?? "–")")
            let reconnect = try StreamerIntegrationTests.stream(port, group, alice)
            _ = await reconnect.ended(within: .seconds(5))
            #expect(reconnect.status == 401, "reconnecting with the old token")

            // The other sign-in of the same user is untouched.
            #expect(try await streamer.call(.get, "/api/v1/groups", token: secondToken).status == .ok)
            #expect(try await api.call(.post, "/api/v1/groups", token: secondToken, ["name": "Still here"]).status == .created)
        }
    }

    @Test func aRevocationOutlivesARestart() async throws {
        try await CommandAPIHarness.with { client, _, _ in
            let bob = try await client.register("bob")
            #expect(try await client.call(.post, "/api/v1/auth/logout", ["refresh_token": bob.refresh]).status == .noContent)
        }
        // A process that starts afterwards loads it from Postgres.
        let fresh = try await CommandAPIHarness.start(environment: Self.settings)
        let revoked = try await fresh.pool.query("SELECT session_id FROM revoked_sessions WHERE expires_at > now()")
        #expect(revoked.count > 0)
        for row in revoked {
            #expect(fresh.api.revocations.isRevoked(try row.decode(UUID.self, "session_id")))
        }
        await fresh.stop()
    }

    @Test func refreshTokenReusePasswordChangeAndSignOutEverywhereEndSessions() async throws {
        try await CommandAPIHarness.with(environment: Self.settings) { client, _, _ in
            let carol = try await client.register("carol")
            let probe: @Sendable (String) async throws -> HTTPResponse.Status = { token in
                try await client.call(.get, "/api/v1/commands/none", token: token).status
            }
            // Reuse: the rotated-away token presented again, after its successor was used, ends the session.
            let rotated = try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": carol.refresh])
            let used = try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": rotated.json["refresh_token"] as? String ?? ""])
            let newToken = try #require(used.json["access_token"] as? String)
            #expect(try await probe(newToken) != .unauthorized)
            #expect(try await client.call(.post, "/api/v1/auth/refresh", ["refresh_token": carol.refresh]).status == .unauthorized)
            #expect(try await probe(newToken) == .unauthorized)
            #expect(try await probe(carol.token) == .unauthorized)

            // Password change: the current password is required; every session ends; a new one begins.
            let login = { @Sendable (password: String) async throws -> Client.Answer in
                try await client.call(.post, "/api/v1/auth/login", ["username": carol.username, "password": password])
            }
            let one = try #require(try await login("correct horse").json["access_token"] as? String)
            let two = try #require(try await login("correct horse").json["access_token"] as? String)
            let wrong = try await client.call(.post, "/api/v1/auth/password", token: one,
                                              ["current_password": "not it at all", "new_password": "battery staple"])
            #expect(wrong.status == .forbidden)
            #expect(try await probe(one) != .unauthorized, "a wrong current password changes nothing")
            let short = try await client.call(.post, "/api/v1/auth/password", token: one,
                                              ["current_password": "correct horse", "new_password": "short"])
            #expect(short.status == .badRequest && short.error.hasPrefix("new_password"))
            let changed = try await client.call(.post, "/api/v1/auth/password", token: one,
                                                ["current_password": "correct horse", "new_password": "battery staple"])
            #expect(changed.status == .ok)
            let three = try #require(changed.json["access_token"] as? String)
            #expect(try await probe(one) == .unauthorized)
            #expect(try await probe(two) == .unauthorized)
            #expect(try await probe(three) != .unauthorized)
            #expect(try await login("correct horse").status == .unauthorized)
            #expect(try await login("battery staple").status == .ok)
            #expect(try await client.call(.post, "/api/v1/auth/password", ["current_password": "x", "new_password": "yyyyyyyy"]).status
                    == .unauthorized, "no token, no change")

            // Sign out everywhere.
            let four = try #require(try await login("battery staple").json["access_token"] as? String)
            #expect(try await client.call(.post, "/api/v1/auth/logout-everywhere", token: three, [:]).status == .noContent)
            #expect(try await probe(three) == .unauthorized)
            #expect(try await probe(four) == .unauthorized)
            #expect(try await client.call(.post, "/api/v1/auth/logout-everywhere", token: four, [:]).status == .unauthorized)
        }
    }

    @Test func browsersKeepTheRefreshTokenInAnHttpOnlyCookie() async throws {
        try await CommandAPIHarness.with(environment: Self.settings) { client, _, _ in
            let name = TestInfrastructure.unique("dora").lowercased().prefix(32)
            let browser: HTTPFields = [.contentType: "application/json", SessionCookie.transportHeader: "cookie",
                                       .origin: "http://localhost:8081"]
            let registered = try await client.send(.post, "/api/v1/auth/register", headers: browser,
                                                   body: #"{"username":"\#(name)","password":"correct horse"}"#)
            #expect(registered.status == .created)
            #expect(registered.json["refresh_token"] == nil, "the page never sees it")
            #expect(registered.json["access_token"] is String)
            let cookie = try #require(registered.headers[.setCookie])
            let attributes = Set(cookie.split(separator: ";").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) })
            #expect(attributes.isSuperset(of: ["HttpOnly", "SameSite=Strict", "Path=/api/v1/auth"]))
            #expect(!attributes.contains("Secure"), "plain http in local development")
            #expect(registered.headers[.cacheControl] == "no-store")
            let token = try #require(SessionCookie.token(in: [.cookie: String(cookie.split(separator: ";")[0])]))

            var withCookie = browser
            withCookie[.cookie] = "theme=dark; \(SessionCookie.name)=\(token)"
            let refreshed = try await client.send(.post, "/api/v1/auth/refresh", headers: withCookie, body: "{}")
            #expect(refreshed.status == .ok && refreshed.json["refresh_token"] == nil && refreshed.json["access_token"] is String)
            let rotated = try #require(SessionCookie.token(in: [.cookie: String((refreshed.headers[.setCookie] ?? "").split(separator: ";")[0])]))
            #expect(rotated != token)

            // Without the custom header the cookie is not used (a cross-site form cannot set it).
            var noHeader = withCookie
            noHeader[SessionCookie.transportHeader] = nil
            #expect(try await client.send(.post, "/api/v1/auth/refresh", headers: noHeader, body: "{}").status == .unauthorized)
            var odd = withCookie
            odd[SessionCookie.transportHeader] = "body"
            #expect(try await client.send(.post, "/api/v1/auth/refresh", headers: odd, body: "{}").status == .badRequest)
            // A page of another origin may not use it.
            var foreign = withCookie
            foreign[.cookie] = "\(SessionCookie.name)=\(rotated)"
            foreign[.origin] = "https://evil.example"
            #expect(try await client.send(.post, "/api/v1/auth/refresh", headers: foreign, body: "{}").status == .forbidden)
            // The spent cookie again, once its successor was used: the session ends and the answer clears the cookie.
            var successor = withCookie
            successor[.cookie] = "\(SessionCookie.name)=\(rotated)"
            let used = try await client.send(.post, "/api/v1/auth/refresh", headers: successor, body: "{}")
            #expect(used.status == .ok)
            let newest = try #require(SessionCookie.token(in: [.cookie: String((used.headers[.setCookie] ?? "").split(separator: ";")[0])]))
            let reused = try await client.send(.post, "/api/v1/auth/refresh", headers: withCookie, body: "{}")
            #expect(reused.status == .unauthorized)
            #expect(reused.headers[.setCookie]?.contains("Max-Age=0") == true)
            withCookie[.cookie] = "\(SessionCookie.name)=\(newest)"
            #expect(try await client.send(.post, "/api/v1/auth/refresh", headers: withCookie, body: "{}").status == .unauthorized,
                    "reuse ended the whole session")

            // Logout by cookie clears it.
            let login = try await client.send(.post, "/api/v1/auth/login", headers: browser,
                                              body: #"{"username":"\#(name)","password":"correct horse"}"#)
            let fresh = try #require(SessionCookie.token(in: [.cookie: String((login.headers[.setCookie] ?? "").split(separator: ";")[0])]))
            withCookie[.cookie] = "\(SessionCookie.name)=\(fresh)"
            let out = try await client.send(.post, "/api/v1/auth/logout", headers: withCookie, body: "{}")
            #expect(out.status == .noContent && out.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await client.send(.post, "/api/v1/auth/refresh", headers: withCookie, body: "{}").status == .unauthorized)
        }
    }

    @Test func oneUserMayHoldOnlySoManyStreams() async throws {
        try await StreamerIntegrationTests.withStreamer(pipeline: false, environment: ["SSE_MAX_STREAMS_PER_USER": "2"]) { api, _, port, _, _ in
            let erin = try await api.register("erin")
            let frank = try await api.register("frank")
            let group = try await api.createGroup(erin)
            #expect(try await api.call(.post, "/api/v1/groups/\(group)/members", token: erin.token,
                                       ["username": frank.username, "role": "member"]).status == .noContent)
            let first = try StreamerIntegrationTests.stream(port, group, erin)
            let second = try StreamerIntegrationTests.stream(port, group, erin)
            #expect(await first.next(within: .seconds(10)) { $0.name == "retry" } != nil)
            #expect(await second.next(within: .seconds(10)) { $0.name == "retry" } != nil)
            let third = try StreamerIntegrationTests.stream(port, group, erin)
            _ = await third.ended(within: .seconds(5))
            #expect(third.status == 429)
            let franks = try StreamerIntegrationTests.stream(port, group, frank)
            #expect(await franks.next(within: .seconds(10)) { $0.name == "retry" } != nil, "another user is not affected")
            first.close()
            let again = try await Poll.seconds {
                let retry = try StreamerIntegrationTests.stream(port, group, erin)
                let opened = await retry.next(within: .seconds(2)) { $0.name == "retry" } != nil
                retry.close()
                return opened
            }
            #expect(again != nil, "a closed stream frees its slot")
        }
    }
}
