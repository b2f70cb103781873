import Crypto
import Foundation
import HTTPAPI
import Postgres

/// A user as stored.
public struct UserRecord: Sendable, Equatable {
    public let userID: UUID
    public let username: String
    public let passwordHash: String
}

/// What happened to a presented refresh token.
public enum RefreshOutcome: Sendable, Equatable {
    /// Rotated: the old token is spent, a new one in the same family (session) was stored.
    case rotated(user: UserRecord, newToken: String, session: UUID)
    /// Unknown, expired or revoked.
    case invalid
    /// Already rotated once: presented again, so it leaked. The whole family is now revoked (the
    /// revocation is returned when this call made it).
    case reused(SessionRevocation?)
}

/// command-api's accounts, sessions and refresh tokens in Postgres (tables `users`,
/// `refresh_tokens`, `revoked_sessions`). A session is one sign-in: a family of refresh tokens,
/// whose id is the access tokens' `sid`. Refresh tokens are 256 random bits, handed out once and
/// stored only as their SHA-256. Ending a session records it in `revoked_sessions` in the same
/// transaction, kept until its last access token has expired.
public struct AccountStore: Sendable {
    let pool: PostgresPool
    let refreshLifetime: TimeInterval
    /// How long a revocation is kept: the access tokens' lifetime and a minute for clock skew.
    let revocationLifetime: TimeInterval

    public init(pool: PostgresPool, refreshTokenDays: Int, accessTokenSeconds: Int = 900) {
        self.pool = pool
        refreshLifetime = TimeInterval(refreshTokenDays) * 86_400
        revocationLifetime = TimeInterval(accessTokenSeconds + 60)
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

    public func user(id: UUID) async throws -> UserRecord? {
        try await pool.withConnection { connection in
            let rows = try connection.query("SELECT user_id, username, password_hash FROM users WHERE user_id = $1", id)
            return try rows.first.map { row in
                UserRecord(userID: try row.decode(UUID.self, "user_id"), username: try row.decode(String.self, "username"),
                           passwordHash: try row.decode(String.self, "password_hash"))
            }
        }
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

    /// Starts a new session (a login or registration): its first refresh token and its id.
    /// Nil when the user's password hash is no longer `passwordHash` (it was changed while the
    /// password was being checked: a sign-in with the old password must not outlive the change).
    /// The user's row is share-locked meanwhile, so a password change waits for this session to be
    /// recorded and then ends it with the others.
    public func issueRefreshToken(for userID: UUID, passwordHash: String) async throws -> (token: String, session: UUID)? {
        let token = Self.newToken()
        let session = UUID()
        let lifetime = refreshLifetime
        let issued = try await pool.withConnection { connection in
            try connection.transaction { connection in
                let current = try connection.query(
                    "SELECT 1 AS ok FROM users WHERE user_id = $1 AND password_hash = $2 FOR SHARE", userID, passwordHash)
                guard !current.isEmpty else { return false }
                try Self.insert(token: token, userID: userID, family: session, lifetime: lifetime, on: connection)
                return true
            }
        }
        return issued ? (token, session) : nil
    }

    /// Rotates `token` atomically: exactly one of two concurrent refreshes with the same token wins.
    /// The family is locked first, so a rotation and a revocation of one session never interleave
    /// (a successor made while a revocation waits would otherwise outlive it), and a revoked
    /// session never rotates again.
    ///
    /// A token rotated less than `retryGrace` ago whose successor has not been used yet is
    /// answered by rotating that successor: the answer to the first refresh was lost (a page
    /// navigated away while it was on its way), not stolen. Past that, a rotated token presented
    /// again counts as reuse and ends the session.
    public func rotate(_ token: String) async throws -> RefreshOutcome {
        let hash = Self.hash(token)
        let replacement = Self.newToken()
        let lifetime = refreshLifetime
        let grace = retryGrace
        return try await pool.withConnection { connection in
            try connection.transaction { connection in
                guard let found = try connection.query("SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1", hash).first
                else { return .invalid }
                let family = try found.decode(UUID.self, "family_id")
                try Self.lock(family: family, on: connection)
                for sql in [Self.rotateCurrent, Self.rotateSuccessor] {
                    if let row = try connection.query(sql, hash, grace).first {
                        let user = UserRecord(userID: try row.decode(UUID.self, "user_id"), username: try row.decode(String.self, "username"),
                                              passwordHash: try row.decode(String.self, "password_hash"))
                        try Self.insert(token: replacement, userID: user.userID, family: family, lifetime: lifetime, on: connection)
                        return .rotated(user: user, newToken: replacement, session: family)
                    }
                }
                let rotated = try connection.query("SELECT rotated_at IS NOT NULL AS rotated FROM refresh_tokens WHERE token_hash = $1", hash)
                guard try rotated.first?.decode(Bool.self, "rotated") == true else { return .invalid }
                // A rotated token presented again: the family ends (again, harmlessly, if it already had).
                return .reused(try revoke(family: family, user: try found.decode(UUID.self, "user_id"), on: connection))
            }
        }
    }

    /// How long a rotated token may be presented again as a retry (see `rotate`).
    let retryGrace: Double = 10

    /// The presented token, when it is the session's current one.
    static let rotateCurrent = """
        UPDATE refresh_tokens t SET rotated_at = now()
        FROM users u
        WHERE t.token_hash = $1 AND t.rotated_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > now()
          AND u.user_id = t.user_id AND $2::float8 >= 0
          AND NOT EXISTS (SELECT 1 FROM revoked_sessions r WHERE r.session_id = t.family_id)
        RETURNING t.user_id, u.username, u.password_hash
        """

    /// The presented token's immediate successor (made in the transaction that rotated it, so
    /// issued at its `rotated_at`), when the presented one was rotated within the grace period and
    /// the successor has not been used. Once per token: a retry rotates the successor.
    static let rotateSuccessor = """
        UPDATE refresh_tokens s SET rotated_at = now()
        FROM refresh_tokens t, users u
        WHERE t.token_hash = $1 AND t.rotated_at > now() - make_interval(secs => $2::float8) AND t.revoked_at IS NULL
          AND s.family_id = t.family_id AND s.rotated_at IS NULL AND s.revoked_at IS NULL AND s.expires_at > now()
          AND s.issued_at = t.rotated_at AND u.user_id = s.user_id
          AND NOT EXISTS (SELECT 1 FROM revoked_sessions r WHERE r.session_id = s.family_id)
        RETURNING s.user_id, u.username, u.password_hash
        """

    /// Serializes the rotations and revocations of one session (transaction-scoped).
    static func lock(family: UUID, on connection: PostgresConnection) throws {
        _ = try connection.query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))", family.uuidString.lowercased())
    }

    /// Ends the token's session (logout); nil for an unknown token.
    public func revokeFamily(of token: String) async throws -> SessionRevocation? {
        let hash = Self.hash(token)
        return try await pool.withConnection { connection in
            try connection.transaction { connection in
                let family = try connection.query("SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1", hash)
                guard let row = family.first else { return nil }
                return try revoke(family: try row.decode(UUID.self, "family_id"), user: try row.decode(UUID.self, "user_id"), on: connection)
            }
        }
    }

    /// Ends every session of the user that may still hold a live refresh or access token (sign out
    /// everywhere, password change).
    public func revokeAllSessions(of userID: UUID) async throws -> [SessionRevocation] {
        try await pool.withConnection { connection in
            try connection.transaction { connection in try revokeAll(of: userID, on: connection) }
        }
    }

    /// Replaces the user's password hash and ends every session of theirs, in one transaction
    /// (the row lock makes a sign-in in flight either finish first and be ended, or fail).
    public func changePassword(of userID: UUID, to hash: String) async throws -> [SessionRevocation] {
        try await pool.withConnection { connection in
            try connection.transaction { connection in
                _ = try connection.query("UPDATE users SET password_hash = $2 WHERE user_id = $1", userID, hash)
                return try revokeAll(of: userID, on: connection)
            }
        }
    }

    private func revokeAll(of userID: UUID, on connection: PostgresConnection) throws -> [SessionRevocation] {
        let families = try connection.query("""
            SELECT DISTINCT family_id FROM refresh_tokens
            WHERE user_id = $1 AND ((revoked_at IS NULL AND expires_at > now()) OR issued_at > now() - make_interval(secs => $2))
            """, userID, Double(revocationLifetime))
        return try families.compactMap { row in
            try revoke(family: try row.decode(UUID.self, "family_id"), user: userID, on: connection)
        }
    }

    /// Revokes the family's refresh tokens and records the session as revoked until its last
    /// access token has expired.
    private func revoke(family: UUID, user: UUID, on connection: PostgresConnection) throws -> SessionRevocation? {
        try Self.lock(family: family, on: connection)
        _ = try connection.query("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", family)
        let rows = try connection.query("""
            INSERT INTO revoked_sessions (session_id, user_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
            ON CONFLICT (session_id) DO UPDATE SET expires_at = EXCLUDED.expires_at, revoked_at = now()
            RETURNING expires_at
            """, family, user, Double(revocationLifetime))
        return try rows.first.map { SessionRevocation(sessionID: family, expiresAt: try $0.decode(Date.self, "expires_at")) }
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
