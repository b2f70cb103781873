import Contracts
import Foundation
import Hummingbird
import JWTKit
import Synchronization

/// Who a valid access token speaks for, and in which session (a sign-in: the refresh-token family).
public struct AuthenticatedUser: Sendable, Equatable {
    public let userID: UUID
    public let username: String
    /// The sign-in the token belongs to (`sid`): revoking it ends every token and stream of it.
    public let sessionID: UUID
    /// `userID` as text (lowercase, as stored and sent on the bus), made once per verified token.
    public let id: String

    public init(userID: UUID, username: String, sessionID: UUID) {
        self.userID = userID
        self.username = username
        self.sessionID = sessionID
        id = userID.lowercasedString
    }
}

/// The claims of an access token: `sub`, `username`, `sid`, `iat`, `exp`, `jti`.
struct AccessTokenClaims: JWTPayload {
    var sub: SubjectClaim
    var username: String
    var sid: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var jti: IDClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// Signs access tokens with command-api's Ed25519 key (EdDSA, with its `kid`). Only command-api
/// has one of these; verifiers have `AccessTokens`.
public struct AccessTokenIssuer: Sendable {
    private let keys: JWTKeyCollection
    private let kid: String
    public let lifetime: Duration

    public init(signingKey: TokenSigningKey, lifetime: Duration = .seconds(15 * 60)) async {
        let keys = JWTKeyCollection()
        await keys.add(eddsa: EdDSA.PrivateKey(backing: signingKey.key), kid: JWKIdentifier(string: signingKey.kid))
        self.keys = keys
        kid = signingKey.kid
        self.lifetime = lifetime
    }

    public var lifetimeSeconds: Int { Int(lifetime.components.seconds) }

    public func issue(for user: AuthenticatedUser, now: Date = Date()) async throws -> String {
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down)) // NumericDate: whole seconds
        let claims = AccessTokenClaims(
            sub: SubjectClaim(value: user.userID.lowercasedString), username: user.username, sid: user.sessionID.lowercasedString,
            iat: IssuedAtClaim(value: now), exp: ExpirationClaim(value: now.addingTimeInterval(TimeInterval(lifetimeSeconds))),
            jti: IDClaim(value: UUID().lowercasedString))
        return try await keys.sign(claims, kid: JWKIdentifier(string: kid), header: ["typ": "JWT"])
    }
}

/// Checks access tokens against the public key set, and against the revoked sessions.
///
/// Only `alg: EdDSA` with a `kid` of the set verifies: `alg: none`, HS256 (also with a public key
/// as its secret), unknown keys, foreign signatures, expired or malformed tokens and tokens of a
/// revoked session all fail the same way (`verify` returns nil, the route answers 401).
public struct AccessTokens: Sendable {
    private let keys: JWTKeyCollection
    private let kids: Set<String>
    /// Sessions that ended (logout, refresh-token reuse, password change, sign out everywhere).
    public let revocations: RevokedSessions
    /// Tokens already verified, until they expire: a client sends the same token with every
    /// request for 15 minutes, and verifying it again (JSON, a signature check, a hop to jwt-kit's
    /// key actor) is a measurable share of a command's cost. The revocation list is consulted on
    /// every use, remembered or not.
    private let verified = VerifiedTokens(capacity: 50_000)

    public init(verificationKeys: TokenVerificationKeys, revocations: RevokedSessions = RevokedSessions()) async {
        let keys = JWTKeyCollection()
        for key in verificationKeys.keys.values {
            await keys.add(eddsa: EdDSA.PublicKey(backing: key.key), kid: JWKIdentifier(string: key.kid))
        }
        self.keys = keys
        kids = Set(verificationKeys.keys.keys)
        self.revocations = revocations
    }

    /// The user of the request's `Authorization: Bearer` token; 401 without a valid one.
    public func authenticate(_ request: Request) async throws -> AuthenticatedUser {
        try await authenticate(request.headers)
    }

    /// The same for a request's header fields (requests served below the router: the SSE streams).
    public func authenticate(_ headers: HTTPFields) async throws -> AuthenticatedUser {
        guard let token = headers.bearerToken, let user = await verify(token) else { throw APIError.unauthorized() }
        return user
    }

    /// The user of a valid token, or nil for any token that must not be trusted.
    public func verify(_ token: String, now: Date = Date()) async -> AuthenticatedUser? {
        guard token.utf8.count < 4096 else { return nil }
        if let user = verified.user(for: token, at: now) {
            return revocations.isRevoked(user.sessionID, at: now) ? nil : user
        }
        guard hasAcceptedHeader(token),
              let claims = try? await keys.verify(token, as: AccessTokenClaims.self),
              claims.exp.value > now, let userID = UUID(uuidString: claims.sub.value), let session = UUID(uuidString: claims.sid),
              !revocations.isRevoked(session, at: now)
        else { return nil }
        let user = AuthenticatedUser(userID: userID, username: claims.username, sessionID: session)
        verified.remember(token, user: user, until: claims.exp.value)
        return user
    }

    /// The header names EdDSA, one of our key ids, and nothing the verifier would have to understand
    /// (`crit`): the algorithm is ours to choose, never the token's.
    private func hasAcceptedHeader(_ token: String) -> Bool {
        guard let dot = token.utf8.firstIndex(of: UInt8(ascii: ".")),
              let data = Base64URL.decode(token[..<dot]),
              let header = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              header["alg"] as? String == "EdDSA", let kid = header["kid"] as? String, kids.contains(kid), header["crit"] == nil
        else { return false }
        return true
    }
}

/// A bounded map of verified tokens to their users, each valid until the token's expiry.
final class VerifiedTokens: Sendable {
    private struct Entry {
        let user: AuthenticatedUser
        let expires: Date
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func user(for token: String, at now: Date) -> AuthenticatedUser? {
        entries.withLock { entries in
            guard let entry = entries[token] else { return nil }
            guard entry.expires > now else { entries[token] = nil; return nil }
            return entry.user
        }
    }

    func remember(_ token: String, user: AuthenticatedUser, until expires: Date) {
        entries.withLock { entries in
            if entries.count >= capacity {
                // Full: forget the expired ones, or everything (they are verified again on use).
                let now = Date()
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[token] = Entry(user: user, expires: expires)
        }
    }
}

extension Request {
    /// The token of `Authorization: Bearer <token>`; tokens are never read from the URL.
    public var bearerToken: String? { headers.bearerToken }
}

extension HTTPFields {
    /// The token of `Authorization: Bearer <token>`.
    public var bearerToken: String? {
        guard let value = self[.authorization] else { return nil }
        let utf8 = value.utf8
        // "Bearer" (any case), one or more spaces, the token.
        guard utf8.count > 7, utf8.prefix(6).elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 }) else { return nil }
        let rest = utf8.dropFirst(6)
        guard rest.first == UInt8(ascii: " ") else { return nil }
        let token = rest.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        let trimmed = token.reversed().drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }.count
        guard trimmed > 0 else { return nil }
        return String(decoding: token.prefix(trimmed), as: UTF8.self)
    }
}
