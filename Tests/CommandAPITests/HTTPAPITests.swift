import Foundation
import HTTPTypes
import struct HummingbirdCore.Request
import NIOCore
import Testing
import CommandAPI
import Crypto
import Synchronization
import Contracts
@testable import HTTPAPI

@Suite("Access tokens")
struct AccessTokenTests {
    let key = TokenSigningKey.generate(kid: "k1")
    let user = AuthenticatedUser(userID: UUID(), username: "alice", sessionID: UUID())

    func verifier(_ keys: [TokenSigningKey]? = nil, revocations: RevokedSessions = RevokedSessions()) async -> AccessTokens {
        await AccessTokens(verificationKeys: TokenVerificationKeys((keys ?? [key]).map(\.publicKey)), revocations: revocations)
    }

    func issuer(_ key: TokenSigningKey? = nil, lifetime: Duration = .seconds(900)) async -> AccessTokenIssuer {
        await AccessTokenIssuer(signingKey: key ?? self.key, lifetime: lifetime)
    }

    @Test func issuedTokenVerifiesToItsUserAndSession() async throws {
        let token = try await issuer().issue(for: user)
        #expect(await verifier().verify(token) == user)
        let claims = try #require(Self.payload(of: token))
        #expect(Set(claims.keys) == ["sub", "username", "sid", "iat", "exp", "jti"])
        #expect(claims["sid"] as? String == user.sessionID.lowercasedString)
        #expect((claims["exp"] as? Double ?? 0) - (claims["iat"] as? Double ?? 0) == 900)
        let header = try #require(Self.part(0, of: token))
        #expect(header["alg"] as? String == "EdDSA" && header["kid"] as? String == "k1")
    }

    @Test func expiredTokenIsRefused() async throws {
        let token = try await issuer(lifetime: .seconds(60)).issue(for: user, now: Date().addingTimeInterval(-120))
        #expect(await verifier().verify(token) == nil)
    }

    @Test func aRememberedTokenStillExpires() async throws {
        let tokens = await verifier()
        let token = try await issuer(lifetime: .seconds(60)).issue(for: user)
        #expect(await tokens.verify(token) == user)
        #expect(await tokens.verify(token) == user, "served from the verified-token cache")
        #expect(await tokens.verify(token, now: Date().addingTimeInterval(61)) == nil, "not past its exp")
    }

    @Test func aRevokedSessionsTokensAreRefusedEvenWhenRemembered() async throws {
        let revocations = RevokedSessions()
        let tokens = await verifier(revocations: revocations)
        let token = try await issuer().issue(for: user)
        let other = AuthenticatedUser(userID: user.userID, username: user.username, sessionID: UUID())
        let otherToken = try await issuer().issue(for: other)
        #expect(await tokens.verify(token) == user)
        let heard = Mutex<[UUID]>([])
        revocations.observe { session in heard.withLock { $0.append(session) } }
        revocations.revoke(user.sessionID, until: Date().addingTimeInterval(960))
        revocations.revoke(user.sessionID, until: Date().addingTimeInterval(960))
        #expect(await tokens.verify(token) == nil)
        #expect(await tokens.verify(otherToken) == other, "another session of the same user goes on")
        #expect(heard.withLock { $0 } == [user.sessionID], "observers hear of a session once")
        #expect(!revocations.isRevoked(user.sessionID, at: Date().addingTimeInterval(961)), "kept only until its tokens expire")
    }

    /// Rotation: tokens signed by the old key keep working while its public key is in the set.
    @Test func keysRotateWithoutLoggingAnyoneOut() async throws {
        let next = TokenSigningKey.generate(kid: "k2")
        let old = try await issuer().issue(for: user)
        let new = try await issuer(next).issue(for: user)
        let both = await verifier([key, next])
        #expect(await both.verify(old) == user)
        #expect(await both.verify(new) == user)
        #expect(await verifier([next]).verify(old) == nil, "the old key removed: its tokens stop")
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
        // Another key that claims our kid.
        let token = try await issuer(TokenSigningKey.generate(kid: "k1")).issue(for: user)
        #expect(await verifier().verify(token) == nil)
    }

    @Test func unknownKeyIDIsRefused() async throws {
        let token = try await issuer(TokenSigningKey.generate(kid: "k9")).issue(for: user)
        #expect(await verifier().verify(token) == nil)
    }

    @Test func algNoneIsRefused() async throws {
        let real = try await issuer().issue(for: user).split(separator: ".")
        let tokens = await verifier()
        for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"none","kid":"k1"}"#] {
            let encoded = Data(header.utf8).base64URL
            #expect(await tokens.verify("\(encoded).\(real[1]).") == nil)
            #expect(await tokens.verify("\(encoded).\(real[1])") == nil)
        }
    }

    /// Algorithm confusion: an HS256 token whose HMAC key is the (public) verification key.
    @Test func hs256SignedWithThePublicKeyIsRefused() async throws {
        let real = try await issuer().issue(for: user).split(separator: ".")
        let tokens = await verifier()
        let publicKey = key.publicKey
        let x = try #require(Self.jsonObject(publicKey.jwk)["x"] as? String)
        let raw = try #require(Data(base64URL: x))
        for secret in [Data(publicKey.jwk.utf8), Data(TokenVerificationKeys([publicKey]).jwks.utf8), raw, Data(x.utf8)] {
            let header = Data(#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#.utf8).base64URL
            let input = "\(header).\(real[1])"
            let mac = Data(HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: secret))).base64URL
            #expect(await tokens.verify("\(input).\(mac)") == nil)
        }
    }

    @Test func criticalHeaderIsRefused() async throws {
        let signer = TokenSigningKey.generate(kid: "k1")
        let tokens = await verifier([signer])
        let header = Data(#"{"alg":"EdDSA","kid":"k1","crit":["exp"],"exp":1}"#.utf8).base64URL
        let payload = try #require(try await issuer(signer).issue(for: user).split(separator: ".").dropFirst().first)
        let input = "\(header).\(payload)"
        let signature = try signer.key.signature(for: Data(input.utf8))
        #expect(await tokens.verify("\(input).\(Data(signature).base64URL)") == nil)
    }

    @Test func tamperedPayloadIsRefused() async throws {
        let parts = try await issuer().issue(for: user).split(separator: ".")
        var claims = try #require(Self.payload(of: parts.joined(separator: ".")))
        claims["username"] = "mallory"
        let forged = try JSONSerialization.data(withJSONObject: claims).base64URL
        #expect(await verifier().verify("\(parts[0]).\(forged).\(parts[2])") == nil)
    }

    @Test(arguments: ["", "garbage", "a.b.c", "eyJ.eyJ.sig", String(repeating: "a", count: 5000)])
    func malformedTokenIsRefused(_ token: String) async {
        #expect(await verifier().verify(token) == nil)
    }

    @Test func keysRoundTripAsJWKAndRefuseWhatIsNotEd25519() throws {
        #expect(try TokenSigningKey(jwk: key.jwk) == key)
        let set = TokenVerificationKeys([key.publicKey, TokenSigningKey.generate(kid: "k2").publicKey])
        #expect(try TokenVerificationKeys(jwks: set.jwks) == set)
        #expect(throws: TokenKeyError.self) { try TokenSigningKey(jwk: key.publicKey.jwk) }
        #expect(throws: TokenKeyError.self) { try TokenSigningKey(jwk: #"{"kty":"EC","crv":"P-256","kid":"a","x":"AA","d":"AA"}"#) }
        #expect(throws: TokenKeyError.self) { try TokenVerificationKeys(jwks: #"{"keys":[]}"#) }
        #expect(throws: TokenKeyError.self) { try TokenVerificationKeys(jwks: "{\"keys\":[\(key.publicKey.jwk),\(key.publicKey.jwk)]}") }
        let badKid = key.publicKey.jwk.replacingOccurrences(of: "\"kid\":\"k1\"", with: "\"kid\":\"k 1\"")
        #expect(throws: TokenKeyError.self) { try TokenVerificationKeys(jwks: "{\"keys\":[\(badKid)]}") }
    }

    /// The streamer's settings hold public keys only; command-api refuses to start without a
    /// signing key (production generates nothing).
    @Test func productionNeedsKeysAndVerifiersGetNoPrivateKey() throws {
        #expect(throws: SettingsError.self) { try CommandAPIConfiguration(environment: ["APP_ENV": "production"]) }
        let production = try DevelopmentKeys.environment(["APP_ENV": "production"], role: .signer)
        #expect(production["JWT_SIGNING_KEY_FILE"] == nil)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let verifier = try DevelopmentKeys.environment(["JWT_KEYS_DIR": folder], role: .verifier)
        #expect(verifier["JWT_SIGNING_KEY_FILE"] == nil && verifier["JWT_PUBLIC_KEYS_FILE"] != nil)
        let signer = try DevelopmentKeys.environment(["JWT_KEYS_DIR": folder], role: .signer)
        let configuration = try CommandAPIConfiguration(environment: signer)
        let published = try TokenVerificationKeys(jwks: try String(contentsOfFile: try #require(verifier["JWT_PUBLIC_KEYS_FILE"]), encoding: .utf8))
        #expect(published == TokenVerificationKeys([configuration.signingKey.publicKey]), "both roles use one pair")
        let mode = try FileManager.default.attributesOfItem(atPath: try #require(signer["JWT_SIGNING_KEY_FILE"]))[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    static func part(_ index: Int, of token: String) -> [String: Any]? {
        Data(base64URL: String(token.split(separator: ".")[index])).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }

    static func jsonObject(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    static func payload(of token: String) -> [String: Any]? {
        let part = token.split(separator: ".")[1]
        var base64 = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }
}

extension Data {
    init?(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        self.init(base64Encoded: base64)
    }

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
        let secret = TokenSigningKey.generate(kid: "k1").environment
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

@Suite("The edge: canonical paths, security headers, bus credentials")
struct EdgeTests {
    @Test(arguments: ["/", "/api/v1/groups", "/api/v1/groups/g-1/members/bob", "/events", "/assets/app.js", "/a.b/c..d"])
    func canonicalPathsPass(_ path: String) {
        #expect(CanonicalPathMiddleware<APIRequestContext>.isCanonical(path))
    }

    @Test(arguments: ["//api/v1/command", "/api//v1/command", "/api/v1/./command", "/api/v1/../v1/command", "/api/v1/command/",
                      "/api%2fv1/command", "/api/v1/%2e%2e/x", "/api\\v1", "api/v1/command", ""])
    func otherSpellingsAreRefused(_ path: String) {
        #expect(!CanonicalPathMiddleware<APIRequestContext>.isCanonical(path))
    }

    @Test func authenticatedAnswersAreNotStoredAndNothingIsSniffed() {
        var headers: HTTPFields = [:]
        SecurityHeaders(production: false).apply(to: &headers, authenticated: false)
        #expect(headers[.xContentTypeOptions] == "nosniff" && headers[.cacheControl] == nil && headers[.strictTransportSecurity] == nil)
        var mine: HTTPFields = [:]
        SecurityHeaders(production: true).apply(to: &mine, authenticated: true)
        #expect(mine[.cacheControl] == "no-store" && mine[.strictTransportSecurity] == SecurityHeaders.hstsValue)
        var chosen: HTTPFields = [.cacheControl: "public, max-age=3600"]
        SecurityHeaders(production: false).apply(to: &chosen, authenticated: true)
        #expect(chosen[.cacheControl] == "public, max-age=3600", "a route's own choice stands")
    }

    @Test func natsCredentialsGoIntoEveryServerURL() throws {
        let environment = ["NATS_USER": "command-api", "NATS_PASSWORD": "p@ss:word"]
        #expect(try NATSCredentials.url("nats://a:4222, nats://b:4222", environment: environment)
                == "nats://command-api:p%40ss%3Aword@a:4222,nats://command-api:p%40ss%3Aword@b:4222")
        #expect(try NATSCredentials.url("nats://x:y@a:4222", environment: environment) == "nats://x:y@a:4222", "a URL's own user stands")
        #expect(try NATSCredentials.url("nats://a:4222", environment: [:]) == "nats://a:4222")
        #expect(throws: SettingsError.self) { try NATSCredentials.url("nats://a:4222", environment: ["NATS_USER": "u"]) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("nats-\(UUID())").path
        try "s3cret\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try NATSCredentials.url("nats://a:4222", environment: ["NATS_USER": "u", "NATS_PASSWORD_FILE": file]) == "nats://u:s3cret@a:4222")
    }
}
