import Crypto
import Foundation
import Postgres

/// A user as stored.
public struct UserRecord: Sendable, Equatable {
    public let userID: UUID
    public let username: String
    public let passwordHash: String
}

/// What happened to a presented refresh token.
public enum RefreshOutcome: Sendable, Equatable {
    /// Rotated: the old token is spent, a new one in the same family was stored.
    case rotated(user: UserRecord, newToken: String)
    /// Unknown, expired or revoked.
    case invalid
    /// Already rotated once: presented again, so it leaked. The whole family is now revoked.
    case reused
}

/// command-api's accounts and refresh tokens in Postgres (tables `users`, `refresh_tokens`).
/// Refresh tokens are 256 random bits, handed out once and stored only as their SHA-256.
public struct AccountStore: Sendable {
    let pool: PostgresPool
    let refreshLifetime: TimeInterval

    public init(pool: PostgresPool, refreshTokenDays: Int) {
        self.pool = pool
        refreshLifetime = TimeInterval(refreshTokenDays) * 86_400
    }

    /// Creates a user; nil when the username is taken.
    public func createUser(username: String, passwordHash: String) async throws -> UserRecord? {
        let id = UUID()
        do {
            try await pool.withConnection { connection in
                _ = try connection.query("INSERT INTO users (user_id, username, password_hash) VALUES ($1, $2, $3)",
                                         id, username, passwordHash)
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            return nil
        }
        return UserRecord(userID: id, username: username, passwordHash: passwordHash)
    }

    public func user(named username: String) async throws -> UserRecord? {
        try await pool.withConnection { connection in
            let rows = try connection.query(
                "SELECT user_id, username, password_hash FROM users WHERE lower(username) = lower($1)", username)
            return try rows.first.map { row in
                UserRecord(userID: try row.decode(UUID.self, "user_id"), username: try row.decode(String.self, "username"),
                           passwordHash: try row.decode(String.self, "password_hash"))
            }
        }
    }

    /// Starts a new token family (a login or registration) and returns the token.
    public func issueRefreshToken(for userID: UUID) async throws -> String {
        let token = Self.newToken()
        let lifetime = refreshLifetime
        try await pool.withConnection { connection in
            try Self.insert(token: token, userID: userID, family: UUID(), lifetime: lifetime, on: connection)
        }
        return token
    }

    /// Rotates `token` atomically: exactly one of two concurrent refreshes with the same token wins;
    /// the other counts as reuse and revokes the family.
    public func rotate(_ token: String) async throws -> RefreshOutcome {
        let hash = Self.hash(token)
        let replacement = Self.newToken()
        let lifetime = refreshLifetime
        return try await pool.withConnection { connection in
            try connection.transaction { connection in
                let spent = try connection.query("""
                    UPDATE refresh_tokens t SET rotated_at = now()
                    FROM users u
                    WHERE t.token_hash = $1 AND t.rotated_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > now()
                      AND u.user_id = t.user_id
                    RETURNING t.user_id, t.family_id, u.username, u.password_hash
                    """, hash)
                if let row = spent.first {
                    let user = UserRecord(userID: try row.decode(UUID.self, "user_id"), username: try row.decode(String.self, "username"),
                                          passwordHash: try row.decode(String.self, "password_hash"))
                    try Self.insert(token: replacement, userID: user.userID, family: try row.decode(UUID.self, "family_id"),
                                    lifetime: lifetime, on: connection)
                    return .rotated(user: user, newToken: replacement)
                }
                let revoked = try connection.query("""
                    UPDATE refresh_tokens SET revoked_at = now()
                    WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND rotated_at IS NOT NULL)
                      AND revoked_at IS NULL
                    RETURNING token_hash
                    """, hash)
                if !revoked.isEmpty { return .reused }
                // A rotated token whose family was already revoked is reuse as well.
                let known = try connection.query("SELECT rotated_at IS NOT NULL AS rotated FROM refresh_tokens WHERE token_hash = $1", hash)
                return try known.first?.decode(Bool.self, "rotated") == true ? .reused : .invalid
            }
        }
    }

    /// Revokes the token's whole family (logout). Unknown tokens are ignored.
    public func revokeFamily(of token: String) async throws {
        let hash = Self.hash(token)
        try await pool.withConnection { connection in
            _ = try connection.query("""
                UPDATE refresh_tokens SET revoked_at = now()
                WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) AND revoked_at IS NULL
                """, hash)
        }
    }

    static func insert(token: String, userID: UUID, family: UUID, lifetime: TimeInterval, on connection: PostgresConnection) throws {
        _ = try connection.query("""
            INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) VALUES ($1, $2, $3, $4)
            """, hash(token), userID, family, Date().addingTimeInterval(lifetime))
    }

    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func hash(_ token: String) -> Data {
        Data(SHA256.hash(data: Data(token.utf8)))
    }
}
