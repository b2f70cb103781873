import Foundation

/// A bus message with a hand-written JSON coding: the same bytes as `MessageCoding.encoder()`
/// writes and the same values as `MessageCoding.decoder()` reads (both checked by the contract
/// tests), on the paths that code every command and event (engine, sink, streamer, command-api).
public protocol BusMessage: Sendable {
    init(json: some ContiguousBytes) throws(MessageJSONError)
    func jsonBytes() -> [UInt8]
}

extension BusMessage {
    public func jsonData() -> Data { Data(jsonBytes()) }
}

extension MessageJSONError {
    static func missing(_ key: String) -> MessageJSONError {
        MessageJSONError(message: "missing key \"\(key)\"", offset: 0)
    }
}

extension TodoEvent: BusMessage {
    public init(json: some ContiguousBytes) throws(MessageJSONError) {
        var v: Int?, eventID: String?, commandID: String?, eventType: EventType?, groupID: String?
        var actorUserID: String?, actorName: String?, occurredAt: Date?, shardID: Int?, groupVersion: Int64?
        var event = TodoEvent(eventID: "", commandID: "", eventType: .todoCreated, groupID: "", actorUserID: "", actorName: "",
                              occurredAt: Date(timeIntervalSinceReferenceDate: 0), shardID: 0, groupVersion: 0)
        try JSONReader.read(json) { reader throws(MessageJSONError) in
            try reader.readObject { reader, key throws(MessageJSONError) in
                // A null required field is an error (as for JSONDecoder); a null optional one is nil.
                let isNull = try reader.consumeNull()
                switch key {
                case "v": v = isNull ? nil : try reader.readInt()
                case "event_id": eventID = isNull ? nil : try reader.readString()
                case "command_id": commandID = isNull ? nil : try reader.readString()
                case "event_type": eventType = isNull ? nil : try reader.readEnum(EventType.self)
                case "group_id": groupID = isNull ? nil : try reader.readString()
                case "actor_user_id": actorUserID = isNull ? nil : try reader.readString()
                case "actor_name": actorName = isNull ? nil : try reader.readString()
                case "occurred_at": occurredAt = isNull ? nil : try reader.readDate()
                case "shard_id": shardID = isNull ? nil : try reader.readInt()
                case "group_version": groupVersion = isNull ? nil : try reader.readInt64()
                case "todo_id": event.todoID = isNull ? nil : try reader.readString()
                case "command_seq": event.commandSequence = isNull ? nil : try reader.readUInt64()
                case "title": event.title = isNull ? nil : try reader.readString()
                case "notes": event.notes = isNull ? nil : try reader.readString()
                case "status": event.status = isNull ? nil : try reader.readEnum(TodoStatus.self)
                case "due_date": event.dueDate = isNull ? nil : try reader.readString()
                case "assignee": event.assignee = isNull ? nil : try reader.readString()
                case "labels": event.labels = isNull ? nil : try reader.readStringArray()
                case "position": event.position = isNull ? nil : try reader.readDouble()
                case "version": event.version = isNull ? nil : try reader.readInt64()
                case "created_by": event.createdBy = isNull ? nil : try reader.readString()
                case "created_by_name": event.createdByName = isNull ? nil : try reader.readString()
                case "created_at": event.createdAt = isNull ? nil : try reader.readDate()
                case "code": event.code = isNull ? nil : try reader.readString()
                case "reason": event.reason = isNull ? nil : try reader.readString()
                case "member_user_id": event.memberUserID = isNull ? nil : try reader.readString()
                case "member_username": event.memberUsername = isNull ? nil : try reader.readString()
                case "role": event.role = isNull ? nil : try reader.readEnum(GroupRole.self)
                case "remind_at": event.remindAt = isNull ? nil : try reader.readString()
                case "timezone": event.timezone = isNull ? nil : try reader.readString()
                case "fire_at": event.fireAt = isNull ? nil : try reader.readDate()
                case "late": event.late = isNull ? nil : try reader.readBool()
                default: if !isNull { try reader.skipValue() }
                }
            }
        }
        guard let v else { throw .missing("v") }
        guard let eventID else { throw .missing("event_id") }
        guard let commandID else { throw .missing("command_id") }
        guard let eventType else { throw .missing("event_type") }
        guard let groupID else { throw .missing("group_id") }
        guard let actorUserID else { throw .missing("actor_user_id") }
        guard let actorName else { throw .missing("actor_name") }
        guard let occurredAt else { throw .missing("occurred_at") }
        guard let shardID else { throw .missing("shard_id") }
        guard let groupVersion else { throw .missing("group_version") }
        event.v = v
        event.eventID = eventID
        event.commandID = commandID
        event.eventType = eventType
        event.groupID = groupID
        event.actorUserID = actorUserID
        event.actorName = actorName
        event.occurredAt = occurredAt
        event.shardID = shardID
        event.groupVersion = groupVersion
        self = event
    }

    public func jsonBytes() -> [UInt8] {
        var writer = JSONObjectWriter()
        // Keys in sorted order, as MessageCoding.encoder() writes them.
        writer.field("actor_name", actorName)
        writer.field("actor_user_id", actorUserID)
        writer.field("assignee", assignee)
        writer.field("code", code)
        writer.field("command_id", commandID)
        writer.field("command_seq", commandSequence)
        writer.field("created_at", createdAt)
        writer.field("created_by", createdBy)
        writer.field("created_by_name", createdByName)
        writer.field("due_date", dueDate)
        writer.field("event_id", eventID)
        writer.field("event_type", eventType)
        writer.field("fire_at", fireAt)
        writer.field("group_id", groupID)
        writer.field("group_version", groupVersion)
        writer.field("labels", labels)
        writer.field("late", late)
        writer.field("member_user_id", memberUserID)
        writer.field("member_username", memberUsername)
        writer.field("notes", notes)
        writer.field("occurred_at", occurredAt)
        writer.field("position", position)
        writer.field("reason", reason)
        writer.field("remind_at", remindAt)
        writer.field("role", role)
        writer.field("shard_id", shardID)
        writer.field("status", status)
        writer.field("timezone", timezone)
        writer.field("title", title)
        writer.field("todo_id", todoID)
        writer.field("v", v)
        writer.field("version", version)
        return writer.finish()
    }
}

extension TodoCommand: BusMessage {
    public init(json: some ContiguousBytes) throws(MessageJSONError) {
        var v: Int?, commandID: String?, action: CommandAction?, groupID: String?
        var actorUserID: String?, actorName: String?, issuedAt: Date?
        var command = TodoCommand(commandID: "", action: .createTodo, groupID: "", actorUserID: "", actorName: "",
                                  issuedAt: Date(timeIntervalSinceReferenceDate: 0))
        try JSONReader.read(json) { reader throws(MessageJSONError) in
            try reader.readObject { reader, key throws(MessageJSONError) in
                let isNull = try reader.consumeNull()
                switch key {
                case "v": v = isNull ? nil : try reader.readInt()
                case "command_id": commandID = isNull ? nil : try reader.readString()
                case "action": action = isNull ? nil : try reader.readEnum(CommandAction.self)
                case "group_id": groupID = isNull ? nil : try reader.readString()
                case "actor_user_id": actorUserID = isNull ? nil : try reader.readString()
                case "actor_name": actorName = isNull ? nil : try reader.readString()
                case "issued_at": issuedAt = isNull ? nil : try reader.readDate()
                case "todo_id": command.todoID = isNull ? nil : try reader.readString()
                case "title": command.title = isNull ? nil : try reader.readString()
                case "notes": command.notes = isNull ? nil : try reader.readString()
                case "status": command.status = isNull ? nil : try reader.readEnum(TodoStatus.self)
                case "due_date": command.dueDate = isNull ? nil : try reader.readString()
                case "assignee": command.assignee = isNull ? nil : try reader.readString()
                case "labels": command.labels = isNull ? nil : try reader.readStringArray()
                case "position": command.position = isNull ? nil : try reader.readDouble()
                case "expected_version": command.expectedVersion = isNull ? nil : try reader.readInt64()
                case "member_user_id": command.memberUserID = isNull ? nil : try reader.readString()
                case "member_username": command.memberUsername = isNull ? nil : try reader.readString()
                case "role": command.role = isNull ? nil : try reader.readEnum(GroupRole.self)
                case "remind_at": command.remindAt = isNull ? nil : try reader.readString()
                case "timezone": command.timezone = isNull ? nil : try reader.readString()
                case "fire_at": command.fireAt = isNull ? nil : try reader.readDate()
                case "late": command.late = isNull ? nil : try reader.readBool()
                default: if !isNull { try reader.skipValue() }
                }
            }
        }
        guard let v else { throw .missing("v") }
        guard let commandID else { throw .missing("command_id") }
        guard let action else { throw .missing("action") }
        guard let groupID else { throw .missing("group_id") }
        guard let actorUserID else { throw .missing("actor_user_id") }
        guard let actorName else { throw .missing("actor_name") }
        guard let issuedAt else { throw .missing("issued_at") }
        command.v = v
        command.commandID = commandID
        command.action = action
        command.groupID = groupID
        command.actorUserID = actorUserID
        command.actorName = actorName
        command.issuedAt = issuedAt
        self = command
    }

    public func jsonBytes() -> [UInt8] {
        var writer = JSONObjectWriter()
        writer.field("action", action)
        writer.field("actor_name", actorName)
        writer.field("actor_user_id", actorUserID)
        writer.field("assignee", assignee)
        writer.field("command_id", commandID)
        writer.field("due_date", dueDate)
        writer.field("expected_version", expectedVersion)
        writer.field("fire_at", fireAt)
        writer.field("group_id", groupID)
        writer.field("issued_at", issuedAt)
        writer.field("labels", labels)
        writer.field("late", late)
        writer.field("member_user_id", memberUserID)
        writer.field("member_username", memberUsername)
        writer.field("notes", notes)
        writer.field("position", position)
        writer.field("remind_at", remindAt)
        writer.field("role", role)
        writer.field("status", status)
        writer.field("timezone", timezone)
        writer.field("title", title)
        writer.field("todo_id", todoID)
        writer.field("v", v)
        return writer.finish()
    }
}
