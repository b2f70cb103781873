/// The `v` field of every command and event message.
public enum SchemaVersion {
    public static let current = 1
}
