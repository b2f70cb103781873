import Contracts
import Foundation
import Hummingbird
import JWTKit
import Synchronization

/// Who a valid access token speaks for.
public struct AuthenticatedUser: Sendable, Equatable {
    public let userID: UUID
    public let username: String
    /// `userID` as text (lowercase, as stored and sent on the bus), made once per verified token.
    public let id: String

    public init(userID: UUID, username: String) {
        self.userID = userID
        self.username = username
        id = userID.lowercasedString
    }
}

/// The claims of an access token (DESIGN §5, issue "sessions"): `sub`, `username`, `iat`, `exp`, `jti`.
struct AccessTokenClaims: JWTPayload {
    var sub: SubjectClaim
    var username: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var jti: IDClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// Issues and checks short-lived HS256 access tokens signed with `JWT_SECRET`.
///
/// Only HS256 with this key verifies: `alg: none`, other algorithms, foreign signatures, expired or
/// malformed tokens all fail the same way (`verify` returns nil, the route answers 401).
public struct AccessTokens: Sendable {
    public static let minimumSecretBytes = 32

    private let keys: JWTKeyCollection
    public let lifetime: Duration
    /// Tokens already verified, until they expire: a client sends the same token with every
    /// request for 15 minutes, and verifying it again (JSON, HMAC, a hop to jwt-kit's key actor)
    /// is a measurable share of a command's cost. Access tokens are not revocable, so serving a
    /// verified token from memory until its `exp` decides exactly as verifying it again would.
    private let verified = VerifiedTokens(capacity: 50_000)

    public init(secret: String, lifetime: Duration = .seconds(15 * 60)) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
        self.lifetime = lifetime
    }

    public var lifetimeSeconds: Int { Int(lifetime.components.seconds) }

    public func issue(for user: AuthenticatedUser, now: Date = Date()) async throws -> String {
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down)) // NumericDate: whole seconds
        let claims = AccessTokenClaims(
            sub: SubjectClaim(value: user.userID.lowercasedString), username: user.username,
            iat: IssuedAtClaim(value: now), exp: ExpirationClaim(value: now.addingTimeInterval(TimeInterval(lifetimeSeconds))),
            jti: IDClaim(value: UUID().lowercasedString))
        return try await keys.sign(claims, header: ["typ": "JWT"])
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
        if let user = verified.user(for: token, at: now) { return user }
        guard let claims = try? await keys.verify(token, as: AccessTokenClaims.self),
              claims.exp.value > now, let userID = UUID(uuidString: claims.sub.value)
        else { return nil }
        let user = AuthenticatedUser(userID: userID, username: claims.username)
        verified.remember(token, user: user, until: claims.exp.value)
        return user
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
