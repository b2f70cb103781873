import Contracts
import Foundation
import HTTPAPI
import Sharding
import Synchronization

/// `POST /api/v1/groups/import` (DESIGN §10): a new group, owned by the caller, from an export
/// document (`GET /api/v1/groups/{id}/export`).
///
/// All or nothing: the whole document is read and every todo checked by the rules of
/// `create-todo` before anything is written; then one transaction creates the group, the
/// caller's membership and, in the outbox, the `member.added` and one `create-todo` per todo, in
/// the document's order. The relay publishes them, so the import either exists whole (and reaches
/// the engine whole, however often NATS fails meanwhile) or not at all.
///
/// What is taken: the group's name and each live todo's id, title, notes, status, position, due
/// date, labels and assignee. The other members are not added (nobody is put in a group without
/// their consent), so an assignee other than the caller is cleared, and counted in the answer.
/// The history (`events`) is not replayed: the new group's history starts with the import, its
/// todos created by the caller.
public enum GroupImport {
    /// The largest document accepted (413 beyond). Its `events` and `members` are checked as JSON
    /// and dropped as they are read, so memory beyond the body follows the todos (at most the
    /// group cap). A longer history than fits is imported through Settings, which sends the
    /// document without its history, or by removing `events` from the file.
    public static let maxBodyBytes = 64 * 1024 * 1024
    /// Imports one command-api process reads at once (a 503 with Retry-After beyond): each holds
    /// its body and its todos in memory.
    public static let concurrentImports = 2
    static let running = Mutex(0)

    /// Runs `body` if fewer than `concurrentImports` are running; a 503 otherwise.
    static func admit<T>(_ body: () async throws -> T) async throws -> T {
        let admitted = running.withLock { count -> Bool in
            guard count < concurrentImports else { return false }
            count += 1
            return true
        }
        guard admitted else {
            var error = APIError(.serviceUnavailable, "other imports are being read; try again in a few seconds")
            error.headers[.retryAfter] = "5"
            throw error
        }
        defer { running.withLock { $0 -= 1 } }
        return try await body()
    }

    /// The keys of an exported todo that an import reads; the others (`version`, `created_by`…) say
    /// what was, and are left.
    static let todoKeys: Set<String> = Set(["todo_id"] + TodoField.allCases.map(\.name))

    public struct Plan: Sendable, Equatable {
        public let name: String
        /// The `create-todo` commands, in the document's order, each with its todo id.
        public let todos: [ValidatedCommand]
        public let assigneesCleared: Int
    }

    /// Reads and checks the document for a group `group` imported by `importer` (a username).
    /// Throws a 400 naming the first problem (`todos[3].title: …`), or a 413 past the group's cap.
    public static func plan(_ body: Data, group: GroupID, importer: String, limits: GrowthLimits) throws(APIError) -> Plan {
        let document: [String: JSONValue]
        do { document = try JSONValue.parseObject(body, skipping: ["events", "members"]) } catch {
            throw APIError.badRequest("the body is not a JSON object: \(error)")
        }
        guard case .string(GroupExportFormat.name)? = document["format"] else {
            throw APIError.badRequest("format: must be \"\(GroupExportFormat.name)\" (a file from GET /api/v1/groups/{id}/export)")
        }
        guard case .number(let version)? = document["format_version"], version == Double(GroupExportFormat.version) else {
            throw APIError.badRequest("format_version: must be \(GroupExportFormat.version)")
        }
        guard case .object(let groupObject)? = document["group"], case .string(let rawName)? = groupObject["name"] else {
            throw APIError.badRequest("group.name: is required")
        }
        let name: String
        do { name = try CommandValidation.text(rawName, field: "group.name", TextRules.groupName).trimmingWhitespace() } catch {
            throw error.apiError
        }
        guard !name.isEmpty else { throw APIError.badRequest("group.name: must not be empty") }
        guard case .array(let items)? = document["todos"] else { throw APIError.badRequest("todos: must be an array") }
        guard items.count <= limits.todosPerGroup else {
            throw APIError(.contentTooLarge, "todos: the file holds \(items.count) todos; a group holds at most \(limits.todosPerGroup)")
        }

        var todos: [ValidatedCommand] = []
        todos.reserveCapacity(items.count)
        var seen = Set<String>()
        var cleared = 0
        for (index, item) in items.enumerated() {
            guard case .object(let todo) = item else { throw APIError.badRequest("todos[\(index)]: must be an object") }
            var fields = todo.filter { todoKeys.contains($0.key) && $0.value != .null }
            fields["action"] = .string(CommandAction.createTodo.rawValue)
            fields["group_id"] = .string(group.rawValue)
            var command: ValidatedCommand
            do { command = try CommandValidation.validate(object: fields) } catch {
                throw APIError.badRequest(error.field.map { "todos[\(index)].\($0): \(error.problem)" } ?? "todos[\(index)]: \(error.problem)")
            }
            let todoID = command.todoID ?? Identifiers.newID()
            guard seen.insert(todoID).inserted else { throw APIError.badRequest("todos[\(index)].todo_id: \(todoID) appears twice") }
            command.todoID = todoID
            if let assignee = command.assignee, assignee != importer {
                command.assignee = nil
                cleared += 1
            }
            todos.append(command)
        }
        return Plan(name: name, todos: todos, assigneesCleared: cleared)
    }

    /// `POST /api/v1/groups/import`'s answer.
    struct Imported: Encodable {
        let id: String
        let name: String
        let todos: Int
        let assigneesCleared: Int

        enum CodingKeys: String, CodingKey {
            case id, name, todos, assigneesCleared = "assignees_cleared"
        }
    }
}
