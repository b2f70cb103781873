import Contracts
import Crypto
import Foundation
import HTTPAPI
import Logging
import Sharding

/// `POST /api/v1/command`'s answer: `{status: "accepted", command_id, todo_id, shard}`.
public struct AcceptedCommand: Codable, Sendable, Equatable {
    public var status = "accepted"
    public let commandID: String
    public let todoID: String?
    public let shard: Int

    enum CodingKeys: String, CodingKey {
        case status, commandID = "command_id", todoID = "todo_id", shard
    }

    /// The same bytes as `JSONBody.response(_:)` makes of it (sorted keys), without `JSONEncoder`
    /// (4% of command-api's CPU when it was).
    public func jsonBytes() -> [UInt8] {
        var writer = JSONObjectWriter(capacity: 128)
        writer.field("command_id", commandID)
        writer.field("shard", shard)
        writer.field("status", status)
        writer.field("todo_id", todoID)
        return writer.finish()
    }
}

/// `GET /api/v1/commands/{id}`'s answer.
public struct CommandStatus: Codable, Sendable, Equatable {
    public let commandID: String
    public let status: String
    public let code: String?
    public let reason: String?
    public let groupVersion: Int64?

    enum CodingKeys: String, CodingKey {
        case commandID = "command_id", status, code, reason, groupVersion = "group_version"
    }
}

/// Accepts todo commands: validate, check membership, publish to the group's command subject, and
/// answer only after JetStream stored it.
///
/// With an `Idempotency-Key`, the command id (and a server-chosen todo id) are derived from the user,
/// the key, the group and the request, so a retry — even one racing the first attempt — publishes the same `Nats-Msg-Id`
/// and stores nothing new; the stored answer makes later retries cheap and detects a key reused for
/// a different request (409).
public struct CommandIntake: Sendable {
    let store: any CommandIntakeStore
    let publisher: any CommandPublishing
    let logger: Logger
    let limits: GrowthLimits
    let todoCounts = TodoCountCache()

    public init(store: any CommandIntakeStore, publisher: any CommandPublishing, logger: Logger, limits: GrowthLimits = GrowthLimits()) {
        self.store = store
        self.publisher = publisher
        self.logger = logger
        self.limits = limits
    }

    public func accept(body: Data, idempotencyKey: String?, user: AuthenticatedUser, now: Date = Date()) async throws -> AcceptedCommand {
        var command: ValidatedCommand
        do { command = try CommandValidation.validate(body: body) } catch { throw error.apiError }
        if let key = idempotencyKey, !Self.isValidIdempotencyKey(key) {
            throw APIError.badRequest("Idempotency-Key: must be 1–200 printable ASCII characters")
        }

        let group = command.groupID.rawValue
        // Whose todo it is, the engine decides against the todo's state; here membership is enough.
        _ = try await store.membership(of: user.userID, in: group).requireMember(group)
        // A reminder without a zone is read in the user's own (their profile's).
        if command.action == .setReminder, command.timezone == nil { command.timezone = try await store.timezone(of: user.userID) }
        if let assignee = command.assignee, !assignee.isEmpty, try await !store.isMember(username: assignee, of: group) {
            throw APIError(.unprocessableContent, "assignee: \(assignee) is not a member of this group")
        }

        var requestHash = Data()
        let ids: (command: String, todo: String)
        if let key = idempotencyKey {
            requestHash = Data(SHA256.hash(data: try Self.canonical.encode(command)))
            if let stored = try await store.idempotentResult(user: user.userID, key: key) {
                guard stored.requestHash == requestHash else {
                    throw APIError.conflict("Idempotency-Key was already used for a different request")
                }
                return AcceptedCommand(commandID: stored.commandID, todoID: stored.todoID, shard: stored.shard)
            }
            ids = Self.derivedIDs(user: user.userID, key: key, group: group, requestHash: requestHash, todoID: command.todoID)
        } else {
            ids = (Identifiers.newID(), command.todoID ?? Identifiers.newID())
        }
        // After the idempotent lookup (a retry of an accepted create gets its 202 back). The
        // projection's count answers early; the engine holds the exact one (a command that passes
        // here at the limit is rejected with `limit_reached`).
        if command.action == .createTodo, !todoCounts.isFarBelow(group) {
            let live = try await store.liveTodoCount(in: group, upTo: limits.todosPerGroup)
            if live >= limits.todosPerGroup {
                throw APIError.conflict("the group already holds \(limits.todosPerGroup) todos, its limit")
            }
            if live < limits.todosPerGroup / 2 { todoCounts.rememberFarBelow(group) }
        }

        let message = command.message(commandID: ids.command, todoID: ids.todo,
                                      actor: (user.id, user.username), issuedAt: now)
        let subject = GroupSubject.command(command.groupID)
        do {
            _ = try await publisher.publish(subject: subject.subject, payload: message.jsonData(),
                                            messageID: ids.command)
        } catch {
            logger.warning("command not stored: NATS unavailable",
                           metadata: ["command_id": "\(ids.command)", "group_id": "\(group)", "error": "\(error)"])
            throw APIError.unavailable("the command could not be stored (message bus unavailable); retry with the same Idempotency-Key")
        }

        let accepted = AcceptedCommand(commandID: ids.command, todoID: ids.todo, shard: subject.shard)
        if let key = idempotencyKey {
            do {
                try await store.storeIdempotentResult(
                    user: user.userID, key: key,
                    result: IdempotentResult(requestHash: requestHash, commandID: ids.command, todoID: ids.todo, shard: subject.shard))
            } catch {
                // The command is stored; a retry derives the same ids and is dropped as a duplicate.
                logger.warning("idempotency key not recorded", metadata: ["command_id": "\(ids.command)", "error": "\(error)"])
            }
        }
        return accepted
    }

    /// The caller's own command's outcome; someone else's is reported as unknown (404).
    public func status(commandID: String, user: AuthenticatedUser) async throws -> CommandStatus {
        guard TextRules.isValidID(commandID) else {
            throw APIError.badRequest("command id: must be 1–128 letters, digits, '_' or '-'")
        }
        guard let outcome = try await store.outcome(commandID: commandID) else {
            // Not decided yet (or never accepted: ids are random, so "pending" reveals nothing).
            return CommandStatus(commandID: commandID, status: "pending", code: nil, reason: nil, groupVersion: nil)
        }
        guard outcome.actorUserID == user.id else {
            throw APIError.notFound("no command \(commandID) of yours")
        }
        return CommandStatus(commandID: commandID, status: outcome.rejected ? "rejected" : "applied", code: outcome.code,
                             reason: outcome.reason, groupVersion: outcome.groupVersion)
    }

    /// Deterministic ids for an idempotent request: UUID-shaped SHA-256 of the user, the key, the
    /// group and the request itself. So only a true retry (same user, key, group and body) maps to
    /// the same command: a key reused for another group or body — after its record expired, or
    /// racing it — derives new ids and becomes a command of its own, never a duplicate that
    /// JetStream or the engine would drop, nor an event id taken in another group.
    static func derivedIDs(user: UUID, key: String, group: String, requestHash: Data, todoID: String?) -> (command: String, todo: String) {
        let request = requestHash.map { String($0, radix: 16) }.joined(separator: ".")
        func uuid(_ label: String) -> String {
            var bytes = Array(SHA256.hash(data: Data("\(label)\n\(user.lowercasedString)\n\(group)\n\(request)\n\(key)".utf8)).prefix(16))
            bytes[6] = (bytes[6] & 0x0F) | 0x80 // version 8: custom
            bytes[8] = (bytes[8] & 0x3F) | 0x80 // RFC 4122 variant
            let u = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
            return u.lowercasedString
        }
        return (uuid("command"), todoID ?? uuid("todo"))
    }

    /// Keys are 1–200 printable ASCII characters (an HTTP header value; clients send UUIDs).
    static func isValidIdempotencyKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.count <= 200 && key.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    static let canonical: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
}
