import Contracts
import Foundation
import HTTPAPI

/// `{token, access_token, refresh_token, token_type, expires_in, user_id, username}` (DESIGN §5).
public struct AuthResponse: Codable, Sendable, Equatable {
    public let token: String
    public let accessToken: String
    public let refreshToken: String
    public let tokenType: String
    public let expiresIn: Int
    public let userID: String
    public let username: String

    enum CodingKeys: String, CodingKey {
        case token, accessToken = "access_token", refreshToken = "refresh_token", tokenType = "token_type"
        case expiresIn = "expires_in", userID = "user_id", username
    }
}

/// Registration, login, refresh with rotation and reuse detection, logout.
public struct AuthService: Sendable {
    let accounts: AccountStore
    let passwords: PasswordHasher
    let tokens: AccessTokens

    public init(accounts: AccountStore, passwords: PasswordHasher, tokens: AccessTokens) {
        self.accounts = accounts
        self.passwords = passwords
        self.tokens = tokens
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
        let password: String
        do { password = try TextRules.password.normalize(credentials.password) } catch { throw APIError.badRequest("password: \(error)") }
        // Counted as sent, in code points (as the OpenAPI document's minLength and maxLength).
        guard PasswordHasher.lengthRange.contains(credentials.password.unicodeScalars.count) else {
            throw APIError.badRequest("password: must be 8–128 characters")
        }
        let hash = try await passwords.hash(password)
        guard let user = try await accounts.createUser(username: username, passwordHash: hash) else {
            throw APIError.conflict("username \(username) is taken")
        }
        return try await session(for: user)
    }

    /// The same answer, after about the same time, for an unknown user and a wrong password.
    public func login(_ credentials: Credentials) async throws -> AuthResponse {
        let username = Username.normalize(credentials.username)
        // Passwords are hashed in NFC. An account whose password was hashed as typed (before the
        // text rules) is also checked with the raw text when that differs.
        let raw = credentials.password
        let normalized = (try? TextRules.password.normalize(raw)) ?? raw
        let user = Username.isValid(username) && raw.utf8.count <= 4 * 128 ? try await accounts.user(named: username) : nil
        var verified = try await passwords.verify(normalized, hash: user?.passwordHash)
        if !verified, user != nil, !normalized.unicodeScalars.elementsEqual(raw.unicodeScalars) {
            verified = try await passwords.verify(raw, hash: user?.passwordHash)
        }
        guard verified, let user else {
            throw APIError.unauthorized("wrong username or password")
        }
        return try await session(for: user)
    }

    public func refresh(_ token: String) async throws -> AuthResponse {
        guard !token.isEmpty, token.utf8.count <= 256 else { throw APIError.unauthorized("invalid refresh token") }
        switch try await accounts.rotate(token) {
        case .rotated(let user, let newToken):
            return try await response(for: user, refreshToken: newToken)
        case .reused:
            throw APIError.unauthorized("refresh token was already used; every session of this sign-in is revoked")
        case .invalid:
            throw APIError.unauthorized("invalid or expired refresh token")
        }
    }

    public func logout(_ token: String) async throws {
        guard !token.isEmpty, token.utf8.count <= 256 else { return }
        try await accounts.revokeFamily(of: token)
    }

    private func session(for user: UserRecord) async throws -> AuthResponse {
        try await response(for: user, refreshToken: try await accounts.issueRefreshToken(for: user.userID))
    }

    private func response(for user: UserRecord, refreshToken: String) async throws -> AuthResponse {
        let access = try await tokens.issue(for: AuthenticatedUser(userID: user.userID, username: user.username))
        return AuthResponse(token: access, accessToken: access, refreshToken: refreshToken, tokenType: "Bearer",
                            expiresIn: tokens.lifetimeSeconds, userID: user.userID.lowercasedString, username: user.username)
    }
}
