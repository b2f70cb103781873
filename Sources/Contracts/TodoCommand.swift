import Foundation

/// A command message on `app.command.<shard>.group.<gid>` (DESIGN §3).
/// Header `Nats-Msg-Id` carries `commandID`.
public struct TodoCommand: Codable, Sendable, Equatable {
    public var v: Int
    public var commandID: String
    public var action: CommandAction
    public var groupID: String
    public var todoID: String?
    public var actorUserID: String
    public var actorName: String
    public var issuedAt: Date

    // Fields of the todo actions.
    public var title: String?
    public var notes: String?
    public var status: TodoStatus?
    public var dueDate: String?
    public var assignee: String?
    public var labels: [String]?
    public var position: Double?
    public var expectedVersion: Int64?

    // Fields of the reminder actions.
    /// `YYYY-MM-DDTHH:MM[:SS]`, a wall-clock time in `timezone` (`LocalTime`).
    public var remindAt: String?
    /// An IANA zone name.
    public var timezone: String?
    /// `fire-reminder`: the instant the reminder was set for; `late` when the scheduler fires it
    /// after a downtime.
    public var fireAt: Date?
    public var late: Bool?

    // Fields of the membership actions.
    public var memberUserID: String?
    public var memberUsername: String?
    public var role: GroupRole?

    public init(
        v: Int = SchemaVersion.current, commandID: String, action: CommandAction, groupID: String,
        todoID: String? = nil, actorUserID: String, actorName: String, issuedAt: Date,
        title: String? = nil, notes: String? = nil, status: TodoStatus? = nil, dueDate: String? = nil,
        assignee: String? = nil, labels: [String]? = nil, position: Double? = nil,
        expectedVersion: Int64? = nil, memberUserID: String? = nil, memberUsername: String? = nil,
        role: GroupRole? = nil, remindAt: String? = nil, timezone: String? = nil, fireAt: Date? = nil, late: Bool? = nil
    ) {
        self.v = v
        self.commandID = commandID
        self.action = action
        self.groupID = groupID
        self.todoID = todoID
        self.actorUserID = actorUserID
        self.actorName = actorName
        self.issuedAt = issuedAt
        self.title = title
        self.notes = notes
        self.status = status
        self.dueDate = dueDate
        self.assignee = assignee
        self.labels = labels
        self.position = position
        self.expectedVersion = expectedVersion
        self.memberUserID = memberUserID
        self.memberUsername = memberUsername
        self.role = role
        self.remindAt = remindAt
        self.timezone = timezone
        self.fireAt = fireAt
        self.late = late
    }

    enum CodingKeys: String, CodingKey {
        case v
        case commandID = "command_id"
        case action
        case groupID = "group_id"
        case todoID = "todo_id"
        case actorUserID = "actor_user_id"
        case actorName = "actor_name"
        case issuedAt = "issued_at"
        case title, notes, status
        case dueDate = "due_date"
        case assignee, labels, position
        case expectedVersion = "expected_version"
        case memberUserID = "member_user_id"
        case memberUsername = "member_username"
        case role
        case remindAt = "remind_at", timezone, fireAt = "fire_at", late
    }
}
