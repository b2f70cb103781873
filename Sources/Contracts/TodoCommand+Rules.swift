extension TodoCommand {
    /// Whether the command's identity can be stored at all: an outcome event carries the command
    /// id (inside its event id), the group id and the actor. A command failing this cannot be
    /// answered with an event and is dead-lettered; command-api never publishes one.
    public var hasStorableIdentity: Bool {
        TextRules.isValidID(commandID) && TextRules.isValidID(groupID) && TextRules.isValidID(actorUserID)
            && TextRules.isValidUsername(actorName) && (todoID.map(TextRules.isValidID) ?? true)
    }

    /// The first field that breaks the rules of its `TodoField` declaration (DESIGN §3: the
    /// engine emits only events the sink can always store), named without its value; nil when
    /// every field is in its stored form.
    public var textProblem: String? {
        for field in TodoField.allCases {
            if let value = self[field], let problem = field.problem(with: value) { return problem }
        }
        if let memberUserID, !TextRules.isValidID(memberUserID) { return "member_user_id: is not a valid id" }
        if let memberUsername, !TextRules.isValidUsername(memberUsername) { return "member_username: is not a valid username" }
        if let remindAt, LocalTime(remindAt) == nil { return "remind_at: is not a local time like 2026-12-24T09:00" }
        if let timezone, !LocalTime.isZone(timezone) { return "timezone: is not an IANA time zone name" }
        return nil
    }
}
