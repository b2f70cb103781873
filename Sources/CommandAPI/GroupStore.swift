import Contracts
import Foundation
import HTTPAPI
import Postgres
import Sharding

/// Groups and memberships (tables `groups`, `group_members`), each change committed together with
/// an outbox row holding the membership command the engine turns into a `member.*` event.
///
/// Every change locks the group's row first (`FOR UPDATE`), so the changes of one group commit one
/// at a time, in the order of their outbox ids — the order the relay publishes them in — and the
/// last-owner rule is checked against a membership nobody else is changing.
public struct GroupStore: Sendable {
    let pool: PostgresPool
    let limits: GrowthLimits

    public init(pool: PostgresPool, limits: GrowthLimits = GrowthLimits()) {
        self.pool = pool
        self.limits = limits
    }

    public struct Actor: Sendable {
        public let userID: UUID
        public let username: String

        public init(userID: UUID, username: String) {
            self.userID = userID
            self.username = username
        }

        var id: String { userID.lowercasedString }
    }

    /// Creates a group owned by `actor`; returns its id.
    public func createGroup(name: String, actor: Actor) async throws -> GroupID {
        try await createGroup(id: try GroupID(Identifiers.newID()), name: name, actor: actor)
    }

    /// Creates a group owned by `actor` holding `todos` (`GroupImport`): with the group, in the
    /// same transaction, one `create-todo` outbox row per todo, in order, after the `member.added`.
    public func importGroup(id: GroupID, name: String, todos: [ValidatedCommand], actor: Actor) async throws {
        _ = try await createGroup(id: id, name: name, actor: actor) { connection in
            let now = Date()
            for slice in stride(from: 0, to: todos.count, by: 1000) {
                let commands = todos[slice..<min(slice + 1000, todos.count)].map { todo in
                    todo.message(commandID: Identifiers.newID(), todoID: todo.todoID ?? Identifiers.newID(),
                                 actor: (actor.id, actor.username), issuedAt: now)
                }
                _ = try connection.query("""
                    INSERT INTO command_outbox (command_id, group_id, subject, payload)
                    SELECT c.command_id, $2, $3, c.payload::jsonb
                    FROM unnest($1::text[], $4::text[]) WITH ORDINALITY AS c(command_id, payload, n)
                    ORDER BY c.n
                    """, commands.map(\.commandID), id.rawValue, GroupSubject.command(id).subject,
                    commands.map { String(decoding: $0.jsonBytes(), as: UTF8.self) })
            }
        }
    }

    private func createGroup(id: GroupID, name: String, actor: Actor,
                             then more: @escaping @Sendable (PostgresConnection) throws -> Void = { _ in }) async throws -> GroupID {
        let limits = self.limits
        try await pool.withConnection { connection in
            try connection.transaction { connection in
                // The user's row is the lock that makes the count exact under concurrent creates.
                _ = try connection.query("SELECT 1 FROM users WHERE user_id = $1 FOR NO KEY UPDATE", actor.userID)
                try Self.requireRoomForAnotherGroup(user: actor.userID, name: "you", limits: limits, on: connection)
                _ = try connection.query("INSERT INTO groups (group_id, name, created_by) VALUES ($1, $2, $3)",
                                         id.rawValue, name, actor.userID)
                _ = try connection.query("INSERT INTO group_members (group_id, user_id, role) VALUES ($1, $2, 'owner')",
                                         id.rawValue, actor.userID)
                try Self.enqueue(.addMember, group: id, actor: actor, member: (actor.userID, actor.username), role: .owner, on: connection)
                try more(connection)
            }
        }
        return id
    }

    /// Deletes a group (owner only): the row stays as a tombstone (`deleted_at`), the memberships go,
    /// and a `delete-group` command makes the engine emit `group.deleted`, on which the sink
    /// tombstones the group's todos.
    public func deleteGroup(_ group: GroupID, actor: Actor) async throws {
        try await changeMembership(group, actor: actor) { connection, role in
            guard GroupPolicy.allows(role, .deleteGroup) else { throw APIError.forbidden("only an owner may delete the group") }
            _ = try connection.query("UPDATE groups SET deleted_at = now() WHERE group_id = $1", group.rawValue)
            _ = try connection.query("DELETE FROM group_members WHERE group_id = $1", group.rawValue)
            try Self.enqueue(.deleteGroup, group: group, actor: actor, member: nil, role: nil, on: connection)
        }
    }

    public func addMember(_ group: GroupID, username: String, role newRole: GroupRole, actor: Actor) async throws {
        let limits = self.limits
        try await changeMembership(group, actor: actor) { connection, role in
            guard GroupPolicy.allows(role, .addMember(as: newRole)) else {
                throw APIError.forbidden(newRole == .member
                    ? "only an owner or an admin may add members" : "only an owner may add a member as \(newRole.rawValue)")
            }
            let target = try Self.user(named: username, on: connection)
            // The group's row is locked (changeMembership); the member's own row is locked for
            // their group count, as createGroup does.
            _ = try connection.query("SELECT 1 FROM users WHERE user_id = $1 FOR NO KEY UPDATE", target.id)
            let members = try connection.query("SELECT count(*) AS members FROM group_members WHERE group_id = $1", group.rawValue)
            guard try members[0].decode(Int.self, "members") < limits.membersPerGroup else {
                throw APIError.conflict("the group already has \(limits.membersPerGroup) members, its limit")
            }
            try Self.requireRoomForAnotherGroup(user: target.id, name: target.name, limits: limits, on: connection)
            let inserted = try connection.query("""
                INSERT INTO group_members (group_id, user_id, role) VALUES ($1, $2, $3)
                ON CONFLICT (group_id, user_id) DO NOTHING RETURNING user_id
                """, group.rawValue, target.id, newRole.rawValue)
            guard !inserted.isEmpty else { throw APIError.conflict("\(target.name) is already a member") }
            try Self.enqueue(.addMember, group: group, actor: actor, member: (target.id, target.name), role: newRole, on: connection)
        }
    }

    public func changeRole(_ group: GroupID, username: String, to newRole: GroupRole, actor: Actor) async throws {
        try await changeMembership(group, actor: actor) { connection, role in
            guard GroupPolicy.allows(role, .changeRoles) else { throw APIError.forbidden("only an owner may change roles") }
            let target = try Self.user(named: username, on: connection)
            guard let current = try Self.role(of: target.id, in: group, on: connection) else {
                throw APIError(.unprocessableContent, "\(target.name) is not a member of this group")
            }
            guard current != newRole else { return }
            if current == .owner { try Self.requireAnotherOwner(group, on: connection) }
            _ = try connection.query("UPDATE group_members SET role = $3 WHERE group_id = $1 AND user_id = $2",
                                     group.rawValue, target.id, newRole.rawValue)
            try Self.enqueue(.changeMemberRole, group: group, actor: actor, member: (target.id, target.name), role: newRole, on: connection)
        }
    }

    /// Removes a member, or the actor themself (leaving the group).
    public func removeMember(_ group: GroupID, username: String, actor: Actor) async throws {
        try await changeMembership(group, actor: actor) { connection, role in
            let target = try Self.user(named: username, on: connection) { APIError.notFound("no user named \($0)") }
            guard let targetRole = try Self.role(of: target.id, in: group, on: connection) else {
                throw APIError.notFound("\(target.name) is not a member of this group")
            }
            let isSelf = target.id == actor.userID
            guard GroupPolicy.allows(role, .removeMember(target: targetRole, isSelf: isSelf)) else {
                throw APIError.forbidden(role == .admin ? "an admin may remove members only, not \(targetRole.rawValue)s"
                                                        : "a member may only remove themself (leave)")
            }
            if targetRole == .owner { try Self.requireAnotherOwner(group, on: connection) }
            _ = try connection.query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2", group.rawValue, target.id)
            try Self.enqueue(.removeMember, group: group, actor: actor, member: (target.id, target.name), role: nil, on: connection)
        }
    }

    // MARK: - Shared steps

    /// Locks the live group, finds the actor's role (403 for a non-member, 404 for no such group),
    /// then runs `change` in the same transaction.
    private func changeMembership(_ group: GroupID, actor: Actor,
                                  _ change: @escaping @Sendable (PostgresConnection, GroupRole) throws -> Void) async throws {
        try await pool.withConnection { connection in
            try connection.transaction { connection in
                let live = try connection.query("SELECT 1 FROM groups WHERE group_id = $1 AND deleted_at IS NULL FOR UPDATE", group.rawValue)
                guard !live.isEmpty else { throw APIError.notFound("group \(group.rawValue) does not exist") }
                guard let role = try Self.role(of: actor.userID, in: group, on: connection) else {
                    throw APIError.forbidden("you are not a member of this group")
                }
                try change(connection, role)
            }
        }
    }

    private static func role(of user: UUID, in group: GroupID, on connection: PostgresConnection) throws -> GroupRole? {
        let rows = try connection.query("SELECT role FROM group_members WHERE group_id = $1 AND user_id = $2", group.rawValue, user)
        return try rows.first.flatMap { GroupRole(rawValue: try $0.decode(String.self, "role")) }
    }

    /// A user named in a request body who does not exist: 422 (the group in the path exists;
    /// a 404 would say it does not). In the path (`DELETE …/members/{username}`) it is a 404.
    private static func user(named raw: String, on connection: PostgresConnection,
                             missingUser: (String) -> APIError = { APIError(.unprocessableContent, "no user named \($0)") })
        throws -> (id: UUID, name: String) {
        let name = Username.normalize(raw)
        guard Username.isValid(name) else { throw APIError.badRequest("username: is not a valid username") }
        let rows = try connection.query("SELECT user_id, username FROM users WHERE lower(username) = $1", name)
        guard let row = rows.first else { throw missingUser(name) }
        return (try row.decode(UUID.self, "user_id"), try row.decode(String.self, "username"))
    }

    /// 409 when `user` already belongs to `limits.groupsPerUser` groups.
    private static func requireRoomForAnotherGroup(user: UUID, name: String, limits: GrowthLimits, on connection: PostgresConnection) throws {
        let rows = try connection.query("SELECT count(*) AS groups FROM group_members WHERE user_id = $1", user)
        guard try rows[0].decode(Int.self, "groups") < limits.groupsPerUser else {
            throw APIError.conflict("\(name == "you" ? "you already belong" : "\(name) already belongs") to \(limits.groupsPerUser) groups, the limit")
        }
    }

    private static func requireAnotherOwner(_ group: GroupID, on connection: PostgresConnection) throws {
        let rows = try connection.query("SELECT count(*) AS owners FROM group_members WHERE group_id = $1 AND role = 'owner'", group.rawValue)
        guard try rows.first?.decode(Int.self, "owners") ?? 0 > 1 else {
            throw APIError.conflict("a group must keep at least one owner; make someone else owner first")
        }
    }

    /// Writes the membership command into the outbox, in the caller's transaction.
    static func enqueue(_ action: CommandAction, group: GroupID, actor: Actor, member: (id: UUID, name: String)?,
                        role: GroupRole?, on connection: PostgresConnection) throws {
        let command = TodoCommand(
            commandID: Identifiers.newID(), action: action, groupID: group.rawValue, actorUserID: actor.id,
            actorName: actor.username, issuedAt: Date(), memberUserID: member.map { $0.id.lowercasedString },
            memberUsername: member?.name, role: role)
        let payload = command.jsonBytes()
        _ = try connection.query("""
            INSERT INTO command_outbox (command_id, group_id, subject, payload) VALUES ($1, $2, $3, $4::jsonb)
            """, command.commandID, group.rawValue, GroupSubject.command(group).subject, String(decoding: payload, as: UTF8.self))
    }
}
