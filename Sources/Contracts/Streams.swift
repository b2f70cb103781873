import Sharding

/// The two streams of DESIGN §3 and their dead-letter subjects.
public enum Streams {
    public static let commands = SubjectKind.command.streamName
    public static let events = SubjectKind.event.streamName
    /// Subjects of messages a consumer gave up on: `app.dlq.commands.<original subject>`.
    public static let deadLetterCommandsPrefix = "app.dlq.commands"
    public static let deadLetterEventsPrefix = "app.dlq.events"
    /// At least the two minutes the contract asks for.
    public static let duplicateWindowSeconds = 120
}
