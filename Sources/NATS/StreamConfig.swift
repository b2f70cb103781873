/// The parts of a JetStream stream's configuration this system manages.
public struct StreamConfig: Sendable, Equatable {
    public enum Storage: Sendable, Equatable {
        case file
        case memory
    }

    public var name: String
    public var subjects: [String]
    public var storage: Storage = .file
    /// Messages with a `Nats-Msg-Id` seen within this window are dropped as duplicates.
    public var duplicateWindow: Duration = .seconds(120)
    /// nil keeps messages forever.
    public var maxAge: Duration?
    /// -1 is unlimited.
    public var maxBytes: Int64 = -1
    /// -1 is unlimited.
    public var maxMessages: Int64 = -1
    public var replicas: Int = 1

    public init(name: String, subjects: [String], storage: Storage = .file, duplicateWindow: Duration = .seconds(120),
                maxAge: Duration? = nil, maxBytes: Int64 = -1, maxMessages: Int64 = -1, replicas: Int = 1) {
        self.name = name
        self.subjects = subjects
        self.storage = storage
        self.duplicateWindow = duplicateWindow
        self.maxAge = maxAge
        self.maxBytes = maxBytes
        self.maxMessages = maxMessages
        self.replicas = replicas
    }

    /// Whether the server's configuration already says what this one says.
    func matches(_ other: StreamConfig) -> Bool {
        Set(subjects) == Set(other.subjects) && storage == other.storage
            && duplicateWindow == other.duplicateWindow && (maxAge ?? .zero) == (other.maxAge ?? .zero)
            && maxBytes == other.maxBytes && maxMessages == other.maxMessages && replicas == other.replicas
    }
}

/// What `ensureStream` did.
public enum StreamReconciliation: Sendable, Equatable {
    case created
    case updated
    case unchanged
}

public struct StreamInfo: Sendable {
    public let config: StreamConfig
    public let messages: UInt64
    public let bytes: UInt64
    public let firstSequence: UInt64
    public let lastSequence: UInt64
    public let consumers: Int
}
