import Contracts
import Foundation
import NATS
import Sharding

/// What an operator does with dead letters (`todo dlq list|show|replay|discard`, docs/operations.md):
/// the DLQ stream holds every message a consumer gave up on, under
/// `app.dlq.<commands|events>.<original subject>`, with why and where from in its headers.
public struct DeadLetterAdmin: Sendable {
    public let jetStream: JetStream
    public let stream: String

    public init(jetStream: JetStream, stream: String = PipelineStreams.deadLetters) {
        self.jetStream = jetStream
        self.stream = stream
    }

    /// One dead letter.
    public struct Letter: Sendable {
        public let sequence: UInt64
        public let storedAt: Date
        public let subject: String
        public let payload: Data
        public let headers: NATSHeaders

        /// The subject it was on before (the DLQ subject without its prefix, or its header).
        public var originalSubject: String {
            if let header = headers["Dlq-Original-Subject"], !header.isEmpty { return header }
            for prefix in [Streams.deadLetterCommandsPrefix, Streams.deadLetterEventsPrefix] where subject.hasPrefix(prefix + ".") {
                return String(subject.dropFirst(prefix.count + 1))
            }
            return subject
        }

        public var error: String { headers["Dlq-Error"] ?? "" }
        public var originalStream: String { headers["Dlq-Original-Stream"] ?? "" }
        public var originalSequence: String { headers["Dlq-Original-Sequence"] ?? "" }
        public var deliveryCount: String { headers["Dlq-Delivery-Count"] ?? "" }

        /// The id the message carries in its JSON (`command_id` or `event_id`), if it is readable:
        /// a replay publishes under it, so the normal path's deduplication applies.
        public var messageID: String? {
            guard let object = try? JSONValue.parse(payload), case .object(let fields) = object else { return nil }
            for key in ["event_id", "command_id"] {
                if case .string(let id)? = fields[key], TextRules.isValidID(id) || id.hasPrefix("evt-") { return id }
            }
            return nil
        }

        init(_ message: StoredMessage) {
            sequence = message.sequence
            storedAt = message.timestamp
            subject = message.subject
            payload = message.payload
            headers = message.headers
        }
    }

    /// How many dead letters there are (the DLQ depth).
    public func depth() async throws -> UInt64 {
        try await jetStream.streamInfo(stream).messages
    }

    /// Up to `limit` letters from sequence `from` on, oldest first.
    public func list(from: UInt64 = 1, limit: Int = 100) async throws -> [Letter] {
        var letters: [Letter] = []
        var next = max(1, from)
        while letters.count < limit, let message = try await jetStream.nextMessage(stream: stream, subject: "app.dlq.>", from: next) {
            letters.append(Letter(message))
            next = message.sequence + 1
        }
        return letters
    }

    public func letter(_ sequence: UInt64) async throws -> Letter? {
        try await jetStream.message(stream: stream, sequence: sequence).map(Letter.init)
    }

    /// Publishes a dead command again on its original subject, through the normal path (the
    /// engine decides a command once, whatever the number of copies), then removes it from the
    /// DLQ unless `keep`. Returns the subject it went to.
    ///
    /// Events are not replayed: `EVENTS` is the engines' record of what was decided, and a copy
    /// appended after newer events would read as a later change. An event in the DLQ could not be
    /// decoded or projected; fix the cause and run `todo rebuild-projection`, then discard it.
    @discardableResult
    public func replay(_ sequence: UInt64, keep: Bool = false) async throws -> String {
        guard let letter = try await letter(sequence) else { throw AdminError.noSuchLetter(sequence) }
        let subject = letter.originalSubject
        guard subject.hasPrefix("app.\(SubjectKind.command.rawValue).") else { throw AdminError.notReplayable(sequence, subject) }
        let ack = try await jetStream.publish(subject, letter.payload, msgID: letter.messageID ?? "dlq-replay-\(stream)-\(sequence)")
        // Within JetStream's duplicate window the copy is dropped: nothing was replayed.
        guard !ack.duplicate else { throw AdminError.duplicate(sequence, windowSeconds: Streams.duplicateWindowSeconds) }
        if !keep { try await discard(sequence) }
        return subject
    }

    /// Deletes the letter from the DLQ stream.
    public func discard(_ sequence: UInt64) async throws {
        guard try await jetStream.deleteMessage(stream: stream, sequence: sequence) else { throw AdminError.noSuchLetter(sequence) }
    }

    public enum AdminError: Error, CustomStringConvertible, Equatable {
        case noSuchLetter(UInt64)
        case notReplayable(UInt64, String)
        case duplicate(UInt64, windowSeconds: Int)

        public var description: String {
            switch self {
            case .noSuchLetter(let sequence): "no dead letter at sequence \(sequence)"
            case .notReplayable(let sequence, let subject):
                "dead letter \(sequence) came from \(subject); only commands are replayed (for an event: fix the cause, run todo rebuild-projection, then discard it)"
            case .duplicate(let sequence, let window):
                "dead letter \(sequence) was dropped as a duplicate: its id is still in JetStream's \(window) s window; it stays in the DLQ, try again later"
            }
        }
    }
}
