import Contracts
import Foundation
import HTTPAPI

/// `{token, access_token, refresh_token?, token_type, expires_in, user_id, username}` (DESIGN §5).
/// `refresh_token` is left out when it went into the browser's HttpOnly cookie instead.
public struct AuthResponse: Codable, Sendable, Equatable {
    public let token: String
    public let accessToken: String
    public var refreshToken: String?
    public let tokenType: String
    public let expiresIn: Int
    public let userID: String
    public let username: String

    enum CodingKeys: String, CodingKey {
        case token, accessToken = "access_token", refreshToken = "refresh_token", tokenType = "token_type"
        case expiresIn = "expires_in", userID = "user_id", username
    }
}

/// Registration, login, refresh with rotation and reuse detection, and the ends of a session:
/// logout, reuse, password change, sign out everywhere. Every end is recorded with the session's
/// refresh tokens and announced, so its access tokens and streams stop on every replica.
public struct AuthService: Sendable {
    let accounts: AccountStore
    let passwords: PasswordHasher
    let tokens: AccessTokenIssuer
    let announcer: any SessionRevocationAnnouncing
    /// This replica's own list, updated before the announcement goes out (so a request to this
    /// replica right after a logout is already refused).
    let revocations: RevokedSessions

    public init(accounts: AccountStore, passwords: PasswordHasher, tokens: AccessTokenIssuer,
                announcer: any SessionRevocationAnnouncing, revocations: RevokedSessions) {
        self.accounts = accounts
        self.passwords = passwords
        self.tokens = tokens
        self.announcer = announcer
        self.revocations = revocations
    }

    public struct Credentials: Decodable, Sendable {
        public let username: String
        public let password: String
    }

    public func register(_ credentials: Credentials) async throws -> AuthResponse {
        let username = Username.normalize(credentials.username)
        guard Username.isValid(username) else {
            throw APIError.badRequest("username: must be 3–32 characters of a-z, 0-9, '_', '.' or '-'")
        }
        let password = try Self.newPassword(credentials.password, field: "password")
        let hash = try await passwords.hash(password)
        guard let user = try await accounts.createUser(username: username, passwordHash: hash) else {
            throw APIError.conflict("username \(username) is taken")
        }
        return try await session(for: user)
    }

    /// The same answer, after about the same time, for an unknown user and a wrong password.
    public func login(_ credentials: Credentials) async throws -> AuthResponse {
        let username = Username.normalize(credentials.username)
        let user = Username.isValid(username) && credentials.password.utf8.count <= 4 * 128 ? try await accounts.user(named: username) : nil
        guard try await checkPassword(credentials.password, of: user), let user else {
            throw APIError.unauthorized("wrong username or password")
        }
        return try await session(for: user)
    }

    public func refresh(_ token: String) async throws -> AuthResponse {
        guard !token.isEmpty, token.utf8.count <= 256 else { throw APIError.unauthorized("invalid refresh token") }
        switch try await accounts.rotate(token) {
        case .rotated(let user, let newToken, let session):
            return try await response(for: user, session: session, refreshToken: newToken)
        case .reused(let revocation):
            await ended(revocation.map { [$0] } ?? [])
            throw APIError.unauthorized("refresh token was already used; every session of this sign-in is revoked")
        case .invalid:
            throw APIError.unauthorized("invalid or expired refresh token")
        }
    }

    public func logout(_ token: String) async throws {
        guard !token.isEmpty, token.utf8.count <= 256 else { return }
        if let revocation = try await accounts.revokeFamily(of: token) { await ended([revocation]) }
    }

    /// Ends every session of the user, this one included (sign out everywhere).
    public func logoutEverywhere(_ user: AuthenticatedUser) async throws {
        await ended(try await accounts.revokeAllSessions(of: user.userID))
    }

    public struct PasswordChange: Sendable {
        public let currentPassword: String
        public let newPassword: String

        public init(currentPassword: String, newPassword: String) {
            self.currentPassword = currentPassword
            self.newPassword = newPassword
        }
    }

    /// Sets a new password when the current one is given: every session of the user ends, and the
    /// caller gets a new one.
    public func changePassword(_ user: AuthenticatedUser, _ change: PasswordChange) async throws -> AuthResponse {
        let password = try Self.newPassword(change.newPassword, field: "new_password")
        guard let record = try await accounts.user(id: user.userID) else { throw APIError.unauthorized() }
        guard change.currentPassword.utf8.count <= 4 * 128, try await checkPassword(change.currentPassword, of: record) else {
            throw APIError.forbidden("current_password: is not your password")
        }
        let hash = try await passwords.hash(password)
        await ended(try await accounts.changePassword(of: user.userID, to: hash))
        return try await session(for: UserRecord(userID: record.userID, username: record.username, passwordHash: hash))
    }

    /// Revoked here at once, then announced to every other process.
    private func ended(_ sessions: [SessionRevocation]) async {
        for revocation in sessions { revocations.revoke(revocation.sessionID, until: revocation.expiresAt) }
        if !sessions.isEmpty { await announcer.announce(sessions) }
    }

    /// Passwords are hashed in NFC. An account whose password was hashed as typed (before the text
    /// rules) is also checked with the raw text when that differs. Hashes even for an unknown user.
    private func checkPassword(_ raw: String, of user: UserRecord?) async throws -> Bool {
        let normalized = (try? TextRules.password.normalize(raw)) ?? raw
        var verified = try await passwords.verify(normalized, hash: user?.passwordHash)
        if !verified, user != nil, !normalized.unicodeScalars.elementsEqual(raw.unicodeScalars) {
            verified = try await passwords.verify(raw, hash: user?.passwordHash)
        }
        return verified && user != nil
    }

    private static func newPassword(_ text: String, field: String) throws -> String {
        let password: String
        do { password = try TextRules.password.normalize(text) } catch { throw APIError.badRequest("\(field): \(error)") }
        // Counted as sent, in code points (as the OpenAPI document's minLength and maxLength).
        guard PasswordHasher.lengthRange.contains(text.unicodeScalars.count) else {
            throw APIError.badRequest("\(field): must be 8–128 characters")
        }
        return password
    }

    private func session(for user: UserRecord) async throws -> AuthResponse {
        guard let issued = try await accounts.issueRefreshToken(for: user.userID, passwordHash: user.passwordHash) else {
            throw APIError.unauthorized("wrong username or password")
        }
        return try await response(for: user, session: issued.session, refreshToken: issued.token)
    }

    private func response(for user: UserRecord, session: UUID, refreshToken: String) async throws -> AuthResponse {
        let access = try await tokens.issue(for: AuthenticatedUser(userID: user.userID, username: user.username, sessionID: session))
        return AuthResponse(token: access, accessToken: access, refreshToken: refreshToken, tokenType: "Bearer",
                            expiresIn: tokens.lifetimeSeconds, userID: user.userID.lowercasedString, username: user.username)
    }
}
