import Foundation
import HTTPTypes
import struct HummingbirdCore.Request
import NIOCore
import Testing
import CommandAPI
import Contracts
@testable import HTTPAPI

@Suite("Access tokens")
struct AccessTokenTests {
    let secret = String(repeating: "s", count: 40)
    let user = AuthenticatedUser(userID: UUID(), username: "alice")

    @Test func issuedTokenVerifiesToItsUser() async throws {
        let tokens = await AccessTokens(secret: secret)
        let token = try await tokens.issue(for: user)
        #expect(await tokens.verify(token) == user)
        let claims = try #require(Self.payload(of: token))
        #expect(Set(claims.keys) == ["sub", "username", "iat", "exp", "jti"])
        #expect((claims["exp"] as? Double ?? 0) - (claims["iat"] as? Double ?? 0) == 900)
    }

    @Test func expiredTokenIsRefused() async throws {
        let tokens = await AccessTokens(secret: secret, lifetime: .seconds(60))
        let token = try await tokens.issue(for: user, now: Date().addingTimeInterval(-120))
        #expect(await tokens.verify(token) == nil)
    }

    @Test func aRememberedTokenStillExpires() async throws {
        let tokens = await AccessTokens(secret: secret, lifetime: .seconds(60))
        let token = try await tokens.issue(for: user)
        #expect(await tokens.verify(token) == user)
        #expect(await tokens.verify(token) == user, "served from the verified-token cache")
        #expect(await tokens.verify(token, now: Date().addingTimeInterval(61)) == nil, "not past its exp")
    }

    @Test(arguments: ["Bearer abc", "bearer abc", "BEARER  abc ", "Bearer\tabc"])
    func bearerTokenIsReadFromTheHeader(_ header: String) {
        let request = Request(head: .init(method: .get, scheme: "http", authority: "x", path: "/", headerFields: [.authorization: header]),
                              body: .init(buffer: ByteBuffer()))
        #expect(request.bearerToken == (header.hasPrefix("Bearer\t") ? nil : "abc"))
    }

    @Test(arguments: ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "Token abc"])
    func otherAuthorizationIsNoBearerToken(_ header: String) {
        let request = Request(head: .init(method: .get, scheme: "http", authority: "x", path: "/", headerFields: [.authorization: header]),
                              body: .init(buffer: ByteBuffer()))
        #expect(request.bearerToken == nil)
    }

    @Test func foreignSignatureIsRefused() async throws {
        let token = try await AccessTokens(secret: String(repeating: "x", count: 40)).issue(for: user)
        #expect(await AccessTokens(secret: secret).verify(token) == nil)
    }

    @Test func algNoneIsRefused() async throws {
        let tokens = await AccessTokens(secret: secret)
        let real = try await tokens.issue(for: user).split(separator: ".")
        let header = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URL
        #expect(await tokens.verify("\(header).\(real[1]).") == nil)
        #expect(await tokens.verify("\(header).\(real[1])") == nil)
    }

    @Test func tamperedPayloadIsRefused() async throws {
        let tokens = await AccessTokens(secret: secret)
        let parts = try await tokens.issue(for: user).split(separator: ".")
        var claims = try #require(Self.payload(of: parts.joined(separator: ".")))
        claims["username"] = "mallory"
        let forged = try JSONSerialization.data(withJSONObject: claims).base64URL
        #expect(await tokens.verify("\(parts[0]).\(forged).\(parts[2])") == nil)
    }

    @Test(arguments: ["", "garbage", "a.b.c", "eyJ.eyJ.sig", String(repeating: "a", count: 5000)])
    func malformedTokenIsRefused(_ token: String) async {
        #expect(await AccessTokens(secret: secret).verify(token) == nil)
    }

    static func payload(of token: String) -> [String: Any]? {
        let part = token.split(separator: ".")[1]
        var base64 = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }
}

extension Data {
    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

@Suite("Rate limits, client address, CORS origins")
struct LimitTests {
    @Test func bucketAllowsBurstThenAsksToWait() {
        let limiter = RateLimiter(ratePerSecond: 1, burst: 3)
        for _ in 0..<3 { #expect(limiter.take("ip", now: 100) == .allowed) }
        #expect(limiter.take("ip", now: 100) == .limited(retryAfterSeconds: 1))
        #expect(limiter.take("other", now: 100) == .allowed)
        #expect(limiter.take("ip", now: 101.1) == .allowed)
        #expect(limiter.take("ip", now: 101.1) == .limited(retryAfterSeconds: 1))
    }

    @Test func slowRatesAskForLongerWaits() {
        let limiter = RateLimiter(ratePerSecond: 0.1, burst: 1)
        #expect(limiter.take("k", now: 0) == .allowed)
        #expect(limiter.take("k", now: 0) == .limited(retryAfterSeconds: 10))
    }

    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() throws {
        let proxy = try SocketAddress(ipAddress: "10.0.0.1", port: 1234)
        let stranger = try SocketAddress(ipAddress: "203.0.113.9", port: 1234)
        let headers: HTTPFields = [.xForwardedFor: "198.51.100.7, 10.0.0.2"]
        let resolver = ClientAddressResolver(trustedProxies: [IPRange("10.0.0.1")!, IPRange("10.0.0.2")!])
        #expect(resolver.clientIP(remote: proxy, headers: headers) == "198.51.100.7")
        #expect(resolver.clientIP(remote: stranger, headers: headers) == "203.0.113.9")
        #expect(ClientAddressResolver().clientIP(remote: proxy, headers: headers) == "10.0.0.1")
    }

    @Test func trustedProxiesAreAddressesOrCIDRBlocks() throws {
        let block = try #require(IPRange("10.0.0.0/8"))
        #expect(block.contains("10.244.1.17") && block.contains("10.0.0.0") && block.contains("::ffff:10.1.2.3"))
        #expect(!block.contains("11.0.0.1") && !block.contains("fd00::1") && !block.contains("not an address"))
        let v6 = try #require(IPRange("fd00::/8"))
        #expect(v6.contains("fd12:3456::1") && !v6.contains("fe80::1") && !v6.contains("10.0.0.1"))
        #expect(IPRange("192.168.1.77/24")?.contains("192.168.1.3") == true, "host bits of the block are ignored")
        #expect(IPRange("0.0.0.0/0")?.contains("203.0.113.9") == true)
        #expect(IPRange("10.0.0.1")?.contains("10.0.0.2") == false)
        for bad in ["10.0.0.0/33", "10.0.0.0/", "/8", "10.0.0.0/8/1", "10.0.0.0/+8", "10.0.0.0/ 8", "abc", "10.0.0", "fd00::/129", ""] {
            #expect(IPRange(bad) == nil, "\(bad)")
        }
        #expect([IPRange].parse(" 10.0.0.0/8 , fd00::/8,,") == .success([IPRange("10.0.0.0/8")!, IPRange("fd00::/8")!]))
        #expect([IPRange].parse("10.0.0.0/8, gateway") == .failure(IPRangeError(entry: "gateway")))
    }

    /// The manifests' own value: behind the Gateway (any pod address in 10.0.0.0/8) two clients
    /// are two clients, not one shared rate-limit bucket.
    @Test func theManifestsTrustedProxiesTellClientsBehindTheGatewayApart() throws {
        let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../infrastructure/app/config.yaml")
        let text = try String(contentsOf: config, encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("TRUSTED_PROXIES:") })
        let value = String(line.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces)
            .trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        let secret = ["JWT_SECRET": String(repeating: "s", count: 40)]
        let configuration = try CommandAPIConfiguration(environment: secret.merging(["TRUSTED_PROXIES": value]) { $1 })
        let resolver = ClientAddressResolver(trustedProxies: configuration.trustedProxies)
        let gateway = try SocketAddress(ipAddress: "10.42.3.17", port: 40_000)
        #expect(resolver.clientIP(remote: gateway, headers: [.xForwardedFor: "198.51.100.7"]) == "198.51.100.7")
        #expect(resolver.clientIP(remote: gateway, headers: [.xForwardedFor: "203.0.113.20"]) == "203.0.113.20")
        #expect(throws: SettingsError(variable: "TRUSTED_PROXIES", problem: "\"the-gateway\" is neither an IP address nor a CIDR block")) {
            try CommandAPIConfiguration(environment: secret.merging(["TRUSTED_PROXIES": "10.0.0.0/8, the-gateway"]) { $1 })
        }
    }

    @Test func loopbackSpellingsOnlyInDevelopment() {
        typealias CORS = CORSPolicy
        #expect(CORS.origins(uiOrigin: "http://localhost:8081", development: true)
                == ["http://localhost:8081", "http://127.0.0.1:8081", "http://[::1]:8081"])
        #expect(CORS.origins(uiOrigin: "http://localhost:8081", development: false) == ["http://localhost:8081"])
        #expect(CORS.origins(uiOrigin: "https://todo.example.com/", development: true) == ["https://todo.example.com"])
    }
}

@Suite("405 with Allow for a known path")
struct AllowedMethodsTests {
    @Test func literalSegmentsWinOverParameters() {
        let allowed = AllowedMethods()
        allowed.add(.patch, "/api/v1/groups/{id}/members/role")
        allowed.add(.delete, "/api/v1/groups/{id}/members/{username}")
        allowed.add(.post, "/api/v1/groups/{id}/members")
        allowed.add(.get, "/events")
        #expect(allowed.methods(for: "/api/v1/groups/g1/members/role") == [.patch])
        #expect(allowed.methods(for: "/api/v1/groups/g1/members/bob") == [.delete])
        #expect(allowed.methods(for: "/api/v1/groups/g1/members") == [.post])
        #expect(allowed.methods(for: "/events") == [.get])
        #expect(allowed.methods(for: "/nowhere") == [])
    }
}
