import Foundation

/// An event message on `app.event.<shard>.group.<gid>` (DESIGN §3). Header `Nats-Msg-Id` carries
/// `eventID`, which is derived from `commandID` (see `EventID`), so a redelivered command yields the
/// same event and JetStream drops the copy.
public struct TodoEvent: Codable, Sendable, Equatable {
    public var v: Int
    public var eventID: String
    public var commandID: String
    public var eventType: EventType
    public var groupID: String
    public var todoID: String?
    public var actorUserID: String
    public var actorName: String
    public var occurredAt: Date
    public var shardID: Int
    /// Position of this event in the group's total order: 1, 2, 3, … without gaps.
    public var groupVersion: Int64
    /// COMMANDS stream sequence of the command this event decides. Engines use it to decide a
    /// group's commands in stream order even when several replicas share the consumer.
    public var commandSequence: UInt64?

    // The resulting todo state, for todo events.
    public var title: String?
    public var notes: String?
    public var status: TodoStatus?
    public var dueDate: String?
    public var assignee: String?
    public var labels: [String]?
    public var position: Double?
    /// The todo's own version after this event (1 on create).
    public var version: Int64?
    /// The todo's creator, carried on every todo event so projections and the engine agree.
    public var createdBy: String?
    public var createdByName: String?
    /// When the todo was created; every todo event carries the full snapshot, so a projection
    /// can apply the newest event of a todo alone.
    public var createdAt: Date?

    // `command.rejected`
    public var code: String?
    public var reason: String?

    // Membership events.
    public var memberUserID: String?
    public var memberUsername: String?
    public var role: GroupRole?

    // Reminder events: the reminder's user is the actor.
    public var remindAt: String?
    public var timezone: String?
    /// When the reminder fires: `remind_at` read in `timezone` by RFC 5545 (`LocalTime`).
    public var fireAt: Date?
    /// `reminder.fired` after the scheduler was down at `fire_at`.
    public var late: Bool?

    public init(
        v: Int = SchemaVersion.current, eventID: String, commandID: String, eventType: EventType,
        groupID: String, todoID: String? = nil, actorUserID: String, actorName: String,
        occurredAt: Date, shardID: Int, groupVersion: Int64, commandSequence: UInt64? = nil, title: String? = nil,
        notes: String? = nil, status: TodoStatus? = nil, dueDate: String? = nil,
        assignee: String? = nil, labels: [String]? = nil, position: Double? = nil,
        version: Int64? = nil, createdBy: String? = nil, createdByName: String? = nil, createdAt: Date? = nil, code: String? = nil, reason: String? = nil,
        memberUserID: String? = nil, memberUsername: String? = nil, role: GroupRole? = nil,
        remindAt: String? = nil, timezone: String? = nil, fireAt: Date? = nil, late: Bool? = nil
    ) {
        self.v = v
        self.eventID = eventID
        self.commandID = commandID
        self.eventType = eventType
        self.groupID = groupID
        self.todoID = todoID
        self.actorUserID = actorUserID
        self.actorName = actorName
        self.occurredAt = occurredAt
        self.shardID = shardID
        self.groupVersion = groupVersion
        self.commandSequence = commandSequence
        self.title = title
        self.notes = notes
        self.status = status
        self.dueDate = dueDate
        self.assignee = assignee
        self.labels = labels
        self.position = position
        self.version = version
        self.createdBy = createdBy
        self.createdByName = createdByName
        self.createdAt = createdAt
        self.code = code
        self.reason = reason
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
        case eventID = "event_id"
        case commandID = "command_id"
        case eventType = "event_type"
        case groupID = "group_id"
        case todoID = "todo_id"
        case actorUserID = "actor_user_id"
        case actorName = "actor_name"
        case occurredAt = "occurred_at"
        case shardID = "shard_id"
        case groupVersion = "group_version"
        case commandSequence = "command_seq"
        case title, notes, status
        case dueDate = "due_date"
        case assignee, labels, position, version
        case createdBy = "created_by"
        case createdByName = "created_by_name"
        case createdAt = "created_at"
        case code, reason
        case memberUserID = "member_user_id"
        case memberUsername = "member_username"
        case role
        case remindAt = "remind_at", timezone, fireAt = "fire_at", late
    }
}
