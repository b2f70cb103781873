import Contracts
import Foundation
import HTTPAPI
import Postgres
import Synchronization

/// An `Idempotency-Key`'s stored answer.
public struct IdempotentResult: Sendable, Equatable {
    public let requestHash: Data
    public let commandID: String
    public let todoID: String?
    public let shard: Int

    public init(requestHash: Data, commandID: String, todoID: String?, shard: Int) {
        self.requestHash = requestHash
        self.commandID = commandID
        self.todoID = todoID
        self.shard = shard
    }
}

/// The command outcome `GET /api/v1/commands/{id}` reports.
public struct CommandOutcome: Sendable, Equatable {
    public let actorUserID: String
    public let rejected: Bool
    public let code: String?
    public let reason: String?
    public let groupVersion: Int64
}

/// Postgres reads and writes of the command intake, behind a protocol so the HTTP component tests
/// can run without a database.
public protocol CommandIntakeStore: Sendable {
    func membership(of user: UUID, in group: String) async throws -> MembershipCheck
    func isMember(username: String, of group: String) async throws -> Bool
    /// The live todos of the group's projection, counted up to `limit` (a larger count is `limit`).
    func liveTodoCount(in group: String, upTo limit: Int) async throws -> Int
    func idempotentResult(user: UUID, key: String) async throws -> IdempotentResult?
    func storeIdempotentResult(user: UUID, key: String, result: IdempotentResult) async throws
    func outcome(commandID: String) async throws -> CommandOutcome?
    /// The user's profile time zone (`UTC` until they pick one): a reminder's default.
    func timezone(of user: UUID) async throws -> String
}

public struct PostgresCommandIntakeStore: CommandIntakeStore {
    let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    public func membership(of user: UUID, in group: String) async throws -> MembershipCheck {
        try await pool.withConnection { connection in try connection.membership(of: user, in: group) }
    }

    public func isMember(username: String, of group: String) async throws -> Bool {
        try await pool.withConnection { connection in
            !(try connection.queryPrepared("""
                SELECT 1 FROM group_members m JOIN users u ON u.user_id = m.user_id
                WHERE m.group_id = $1 AND lower(u.username) = lower($2)
                """, group, username)).isEmpty
        }
    }

    public func liveTodoCount(in group: String, upTo limit: Int) async throws -> Int {
        try await pool.withConnection { connection in
            // Reads at most `limit` index entries (todos_board_idx covers the live todos).
            try connection.queryPrepared("""
                SELECT count(*)::int AS live FROM (SELECT 1 FROM todos WHERE group_id = $1 AND deleted_at IS NULL LIMIT $2) AS t
                """, group, Int64(limit))[0].decode(Int.self, "live")
        }
    }

    public func idempotentResult(user: UUID, key: String) async throws -> IdempotentResult? {
        try await pool.withConnection { connection in
            try connection.queryPrepared("""
                SELECT request_hash, command_id, todo_id, shard FROM idempotency_keys
                WHERE user_id = $1 AND key = $2 AND created_at > now() - interval '24 hours'
                """, user, key).first.map { row in
                IdempotentResult(requestHash: try row.decode(Data.self, "request_hash"), commandID: try row.decode(String.self, "command_id"),
                                 todoID: try row.decode(String?.self, "todo_id"), shard: try row.decode(Int.self, "shard"))
            }
        }
    }

    public func storeIdempotentResult(user: UUID, key: String, result: IdempotentResult) async throws {
        try await pool.withConnection { connection in
            // A key older than the 24 h it is promised for may be reused for a new request.
            _ = try connection.queryPrepared("""
                INSERT INTO idempotency_keys (user_id, key, request_hash, command_id, todo_id, shard) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (user_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, command_id = EXCLUDED.command_id,
                    todo_id = EXCLUDED.todo_id, shard = EXCLUDED.shard, created_at = now()
                WHERE idempotency_keys.created_at <= now() - interval '24 hours'
                """, user, key, result.requestHash, result.commandID, result.todoID, result.shard)
        }
    }

    public func outcome(commandID: String) async throws -> CommandOutcome? {
        try await pool.withConnection { connection in
            try connection.queryPrepared("""
                SELECT actor_user_id, event_type, group_version, payload->>'code' AS code, payload->>'reason' AS reason
                FROM todo_events WHERE event_id = $1
                """, EventID.derive(fromCommandID: commandID)).first.map { row in
                CommandOutcome(actorUserID: try row.decode(String.self, "actor_user_id"),
                               rejected: try row.decode(String.self, "event_type") == EventType.commandRejected.rawValue,
                               code: try row.decode(String?.self, "code"), reason: try row.decode(String?.self, "reason"),
                               groupVersion: try row.decode(Int64.self, "group_version"))
            }
        }
    }

    public func timezone(of user: UUID) async throws -> String {
        try await pool.withConnection { connection in
            try connection.queryPrepared("SELECT coalesce(timezone, 'UTC') AS timezone FROM users WHERE user_id = $1", user)
                .first?.decode(String.self, "timezone") ?? "UTC"
        }
    }
}

/// The intake store with `MembershipCache` in front of the membership check.
public struct CachedCommandIntakeStore: CommandIntakeStore {
    let base: any CommandIntakeStore
    let cache: MembershipCache

    public init(base: any CommandIntakeStore, cache: MembershipCache) {
        self.base = base
        self.cache = cache
    }

    public func membership(of user: UUID, in group: String) async throws -> MembershipCheck {
        let now = MembershipCache.now()
        let lookup = cache.lookup(user: user, group: group, now: now)
        if let check = lookup.check { return check }
        let check = try await base.membership(of: user, in: group)
        cache.remember(check, user: user, group: group, asOf: lookup.epoch, now: now)
        return check
    }

    public func isMember(username: String, of group: String) async throws -> Bool {
        try await base.isMember(username: username, of: group)
    }

    public func liveTodoCount(in group: String, upTo limit: Int) async throws -> Int {
        try await base.liveTodoCount(in: group, upTo: limit)
    }

    public func idempotentResult(user: UUID, key: String) async throws -> IdempotentResult? {
        try await base.idempotentResult(user: user, key: key)
    }

    public func storeIdempotentResult(user: UUID, key: String, result: IdempotentResult) async throws {
        try await base.storeIdempotentResult(user: user, key: key, result: result)
    }

    public func outcome(commandID: String) async throws -> CommandOutcome? {
        try await base.outcome(commandID: commandID)
    }

    public func timezone(of user: UUID) async throws -> String {
        try await base.timezone(of: user)
    }
}
