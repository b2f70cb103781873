import Foundation
import Hummingbird
import JWTKit

/// Who a valid access token speaks for.
public struct AuthenticatedUser: Sendable, Equatable {
    public let userID: UUID
    public let username: String

    public init(userID: UUID, username: String) {
        self.userID = userID
        self.username = username
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
            sub: SubjectClaim(value: user.userID.uuidString.lowercased()), username: user.username,
            iat: IssuedAtClaim(value: now), exp: ExpirationClaim(value: now.addingTimeInterval(TimeInterval(lifetimeSeconds))),
            jti: IDClaim(value: UUID().uuidString.lowercased()))
        return try await keys.sign(claims, header: ["typ": "JWT"])
    }

    /// The user of the request's `Authorization: Bearer` token; 401 without a valid one.
    public func authenticate(_ request: Request) async throws -> AuthenticatedUser {
        guard let token = request.bearerToken, let user = await verify(token) else { throw APIError.unauthorized() }
        return user
    }

    /// The user of a valid token, or nil for any token that must not be trusted.
    public func verify(_ token: String) async -> AuthenticatedUser? {
        guard token.utf8.count < 4096,
              let claims = try? await keys.verify(token, as: AccessTokenClaims.self),
              let userID = UUID(uuidString: claims.sub.value)
        else { return nil }
        return AuthenticatedUser(userID: userID, username: claims.username)
    }
}

extension Request {
    /// The token of `Authorization: Bearer <token>`; tokens are never read from the URL.
    public var bearerToken: String? {
        guard let value = headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
