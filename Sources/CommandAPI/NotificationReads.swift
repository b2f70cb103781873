import Contracts
import Foundation
import HTTPAPI
import Logging
import Metrics
import NATS
import Postgres
import Sharding

/// Tells a user's streams that their notifications changed (so every tab's bell follows).
public protocol NotificationSignalling: Sendable {
    func notificationsRead(by user: String) async
}

/// On the user's subject in the NOTIFY stream (`app.notify.<shard>.user.<id>`). A signal that
/// cannot be stored is logged and counted: the user's other tabs show the old count until their
/// next signal or reconnect; the notifications themselves are read either way.
public struct NATSNotificationSignaller: NotificationSignalling {
    let connection: NATSConnection
    let logger: Logger
    private let failures = Counter(label: "notification_signal_failures_total")

    public init(connection: NATSConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    public func notificationsRead(by user: String) async {
        do {
            _ = try await connection.jetStream.publish(UserSubject(userID: user).subject, NotificationSignal.read)
        } catch {
            failures.increment()
            logger.warning("notification signal not stored; the user's other tabs keep the old count until their next",
                           metadata: ["error": "\(error)"])
        }
    }
}

/// No signals (a single process in tests; the bells follow at their next reconnect).
struct NoNotificationSignals: NotificationSignalling {
    func notificationsRead(by user: String) async {}
}

/// `POST /api/v1/notifications/read` (DESIGN §9): `{ids:[…]}` or `{all:true}` marks the caller's
/// own notifications read. Ids that are not the caller's (or do not exist) change nothing and are
/// not reported, so the answer says nothing about anyone else's.
struct NotificationReads: Sendable {
    static let maxIDs = 500
    let pool: PostgresPool

    enum Selection: Equatable {
        case all
        case ids([Int64])
    }

    static func selection(_ fields: inout FieldReader) throws(FieldError) -> Selection {
        let all = fields.value("all")
        let ids = fields.value("ids")
        try fields.rejectUnknown(context: "marking notifications read")
        switch (all, ids) {
        case (.bool(true)?, nil):
            return .all
        case (nil, .array(let items)?):
            guard (1...maxIDs).contains(items.count) else { throw FieldError(field: "ids", "must hold 1 to \(maxIDs) notification ids") }
            var result: [Int64] = []
            for item in items {
                guard case .number(let number) = item, number >= 1, number <= 9_007_199_254_740_991, number == number.rounded() else {
                    throw FieldError(field: "ids", "must hold notification ids (positive whole numbers)")
                }
                result.append(Int64(number))
            }
            return .ids(result)
        case (_?, _?):
            throw FieldError(field: nil, "send either ids or all, not both")
        case (_?, nil):
            throw FieldError(field: "all", "must be true")
        case (nil, _?):
            throw FieldError(field: "ids", "must be an array of notification ids")
        case (nil, nil):
            throw FieldError(field: nil, "send ids (an array of notification ids) or all: true")
        }
    }

    /// Marks them read; returns how many changed.
    func markRead(_ selection: Selection, of user: String) async throws -> Int {
        let ids: [Int64]? = if case .ids(let ids) = selection { ids } else { nil }
        return try await pool.withConnection { connection in
            try connection.query("""
                UPDATE notifications SET read_at = now()
                WHERE user_id = $1 AND read_at IS NULL AND ($2::bigint[] IS NULL OR notification_id = ANY($2::bigint[]))
                """, user, ids).affectedRows
        }
    }
}
