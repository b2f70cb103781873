import CEpoll
import Contracts
import Foundation
import HTTPAPI
import NATS
import Postgres
import Sharding

/// The SSE benches' audience: one user, owner of one group, and an access token of a throwaway
/// signing key (the streamers under test verify with its public half). Every stream follows the
/// group, so one event goes to all of them.
struct SSEBenchGroup {
    let userID: UUID
    let group: GroupID
    let key: TokenSigningKey
    let token: String

    static func create(in pool: PostgresPool, prefix: String, name: String, tokenLifetime: Duration) async throws -> SSEBenchGroup {
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let userID = UUID()
        let group = try GroupID("\(prefix)-\(tag)")
        let username = "bench_\(tag)"
        try await pool.withTransaction { db in
            try db.query("INSERT INTO users (user_id, username, password_hash) VALUES ($1, $2, 'not-a-hash')", userID, username)
            try db.query("INSERT INTO groups (group_id, name, created_by) VALUES ($1, $2, $3)", group.rawValue, name, userID)
            try db.query("INSERT INTO group_members (group_id, user_id, role) VALUES ($1, $2, 'owner')", group.rawValue, userID)
        }
        let key = TokenSigningKey.generate(kid: "bench")
        let token = try await AccessTokenIssuer(signingKey: key, lifetime: tokenLifetime)
            .issue(for: AuthenticatedUser(userID: userID, username: username, sessionID: UUID()))
        return SSEBenchGroup(userID: userID, group: group, key: key, token: token)
    }

    /// Publishes the group's todo.created event at `version` to JetStream, as the engine would;
    /// returns CLOCK_REALTIME nanoseconds from just before the publish (the fan-out's start).
    func publishEvent(version: Int64, on nats: NATSConnection) async throws -> UInt64 {
        let subject = GroupSubject.event(group)
        var event = TodoEvent(eventID: "evt-\(group.rawValue)-\(version)", commandID: "cmd-\(version)", eventType: .todoCreated,
                              groupID: group.rawValue, todoID: "todo-\(version)", actorUserID: userID.uuidString.lowercased(),
                              actorName: "bench", occurredAt: Date(), shardID: subject.shard, groupVersion: version)
        event.title = "fan-out \(version)"; event.status = .todo; event.position = Double(version); event.version = 1
        let payload = try MessageCoding.encoder().encode(event)
        let sent = UInt64(bench_realtime_ns())
        _ = try await nats.jetStream.publish(subject.subject, payload, msgID: event.eventID)
        return sent
    }
}
