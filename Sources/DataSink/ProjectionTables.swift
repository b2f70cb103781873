/// The three tables a projection writes. The live projection uses the defaults; a rebuild writes
/// into fresh tables and swaps them in.
public struct ProjectionTables: Sendable, Equatable {
    public var events: String
    public var todos: String
    public var offsets: String

    public static let live = ProjectionTables(events: "todo_events", todos: "todos", offsets: "group_projection_offsets")

    public init(events: String, todos: String, offsets: String) {
        self.events = events
        self.todos = todos
        self.offsets = offsets
    }

    public func suffixed(_ suffix: String) -> ProjectionTables {
        ProjectionTables(events: events + suffix, todos: todos + suffix, offsets: offsets + suffix)
    }

    public var all: [String] { [events, todos, offsets] }
}
