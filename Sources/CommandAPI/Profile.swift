import Contracts
import Foundation
import HTTPAPI
import Postgres

/// `GET`/`PATCH /api/v1/me` (DESIGN §9): who the caller is and their time zone, an IANA name
/// (`Europe/Berlin`); `UTC` until they pick one.
public struct Profile: Codable, Sendable, Equatable {
    public let userID: String
    public let username: String
    public let timezone: String

    enum CodingKeys: String, CodingKey {
        case userID = "user_id", username, timezone
    }

    /// The zone as stored (`LocalTime.isZone`), or a 400 naming the field.
    public static func timezone(_ raw: String) throws(APIError) -> String {
        guard LocalTime.isZone(raw) else {
            throw APIError.badRequest("timezone: must be an IANA time zone name such as Europe/Berlin or UTC")
        }
        return raw
    }
}

/// The profile's rows (`users.timezone`, migration 0010).
public struct ProfileStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    public func profile(of user: UUID) async throws -> Profile? {
        try await pool.withConnection { connection in
            try connection.query("SELECT user_id, username, coalesce(timezone, 'UTC') AS timezone FROM users WHERE user_id = $1", user)
                .first.map { row in
                    Profile(userID: try row.decode(UUID.self, "user_id").lowercasedString, username: try row.decode(String.self, "username"),
                            timezone: try row.decode(String.self, "timezone"))
                }
        }
    }

    public func setTimezone(of user: UUID, to zone: String) async throws -> Profile? {
        try await pool.withConnection { connection in
            _ = try connection.query("UPDATE users SET timezone = $2 WHERE user_id = $1", user, zone)
        }
        return try await profile(of: user)
    }
}
