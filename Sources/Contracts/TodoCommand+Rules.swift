extension TodoCommand {
    /// Whether the command's identity can be stored at all: an outcome event carries the command
    /// id (inside its event id), the group id and the actor. A command failing this cannot be
    /// answered with an event and is dead-lettered; command-api never publishes one.
    public var hasStorableIdentity: Bool {
        TextRules.isValidID(commandID) && TextRules.isValidID(groupID) && TextRules.isValidID(actorUserID)
            && TextRules.isValidUsername(actorName) && (todoID.map(TextRules.isValidID) ?? true)
    }

    /// The first field that breaks the text rules (DESIGN §3: the engine emits only events the
    /// sink can always store), named without its value; nil when every field is in its stored form.
    public var textProblem: String? {
        func check(_ name: String, _ value: String?, _ rule: TextRule) -> String? {
            guard let value else { return nil }
            do {
                let normalized = try rule.normalize(value)
                // By scalars: `==` on String compares canonical equivalence, which NFC never changes.
                return normalized.unicodeScalars.elementsEqual(value.unicodeScalars)
                    ? nil : "\(name): is not in its normalized form (NFC, LF line breaks)"
            } catch {
                return "\(name): \(error)"
            }
        }
        if let problem = check("title", title, TextRules.title) { return problem }
        if let problem = check("notes", notes, TextRules.notes) { return problem }
        if let labels {
            if labels.count > TextRules.maxLabelsPerTodo { return "labels: at most \(TextRules.maxLabelsPerTodo) labels are allowed" }
            for label in labels {
                if let problem = check("labels", label, TextRules.label) { return problem }
            }
        }
        if let dueDate, !dueDate.isEmpty, !TextRules.isISODate(dueDate) { return "due_date: must be a date like 2026-12-31" }
        if let assignee, !assignee.isEmpty, !TextRules.isValidUsername(assignee) { return "assignee: is not a valid username" }
        if let position, !position.isFinite { return "position: must be a finite number" }
        if let memberUserID, !TextRules.isValidID(memberUserID) { return "member_user_id: is not a valid id" }
        if let memberUsername, !TextRules.isValidUsername(memberUsername) { return "member_username: is not a valid username" }
        return nil
    }
}
