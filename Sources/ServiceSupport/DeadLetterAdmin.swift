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

    /// Publishes the letter again on its original subject, through the normal path (the engine
    /// decides a command once, whatever the number of copies; the sink stores an event once),
    /// then removes it from the DLQ unless `keep`. Returns the subject it went to.
    @discardableResult
    public func replay(_ sequence: UInt64, keep: Bool = false) async throws -> String {
        guard let letter = try await letter(sequence) else { throw AdminError.noSuchLetter(sequence) }
        let subject = letter.originalSubject
        guard subject.hasPrefix("app.\(SubjectKind.command.rawValue).") || subject.hasPrefix("app.\(SubjectKind.event.rawValue).") else {
            throw AdminError.notReplayable(sequence, subject)
        }
        _ = try await jetStream.publish(subject, letter.payload, msgID: letter.messageID ?? "dlq-replay-\(stream)-\(sequence)")
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

        public var description: String {
            switch self {
            case .noSuchLetter(let sequence): "no dead letter at sequence \(sequence)"
            case .notReplayable(let sequence, let subject): "dead letter \(sequence) came from \(subject), which is neither a command nor an event subject"
            }
        }
    }
}
