/// Event ids are a pure function of the command id: every command has exactly one outcome event, so
/// a redelivered or re-decided command produces the same `Nats-Msg-Id` and JetStream's duplicate
/// window (and the sink's `ON CONFLICT DO NOTHING`) keep it to one copy.
public enum EventID {
    public static let prefix = "evt-"

    public static func derive(fromCommandID commandID: String) -> String {
        prefix + commandID
    }
}
