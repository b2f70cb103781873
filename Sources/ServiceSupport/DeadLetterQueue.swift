import Foundation
import Logging
import Sharding
import Metrics
import NATS

/// Moves a message a consumer cannot process to `app.dlq.<commands|events>.<original subject>`,
/// with the error and its origin in headers. The `Nats-Msg-Id` is derived from the original
/// stream and sequence, so a message dead-lettered twice (two replicas, a retry) is stored once.
public struct DeadLetterQueue: Sendable {
    public let jetStream: JetStream
    /// `app.dlq.commands` or `app.dlq.events`.
    public let prefix: String
    private let counter: Counter

    public init(jetStream: JetStream, prefix: String) {
        self.jetStream = jetStream
        self.prefix = prefix
        counter = Counter(label: "dlq_messages_total", dimensions: [("queue", prefix)])
    }

    public func send(subject: String, payload: Data, stream: String, sequence: UInt64, deliveryCount: UInt64,
                     error: String) async throws {
        var headers = NATSHeaders()
        headers.add("Dlq-Error", String(error.prefix(1000)).replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " "))
        headers.add("Dlq-Original-Subject", subject)
        headers.add("Dlq-Original-Stream", stream)
        headers.add("Dlq-Original-Sequence", String(sequence))
        headers.add("Dlq-Delivery-Count", String(deliveryCount))
        _ = try await jetStream.publish(OutgoingMessage(
            subject: "\(prefix).\(subject)", payload: payload, msgID: "dlq-\(stream)-\(sequence)", headers: headers))
        counter.increment()
    }

    /// Dead-letters a fetched message (logging why); false when even that failed, so the caller
    /// leaves the message for redelivery.
    public func deadLetter(_ message: JetStreamMessage, logger: Logger, reason: String) async -> Bool {
        let metadata = message.metadata
        logger.error("message dead-lettered", metadata: message.logContext.merging([
            "stream.sequence": "\(metadata.streamSequence)", "reason": "\(reason)"]) { $1 })
        do {
            try await send(subject: message.subject, payload: message.payload, stream: metadata.stream,
                           sequence: metadata.streamSequence, deliveryCount: metadata.deliveryCount, error: reason)
            return true
        } catch {
            logger.error("dead-lettering failed; the message will be redelivered", metadata: ["error": "\(error)"])
            return false
        }
    }
}

extension JetStreamMessage {
    /// What a log line about this message carries: its subject, the group it belongs to and its
    /// message id (for commands and events, the command or event id).
    public var logContext: Logger.Metadata {
        var context: Logger.Metadata = ["subject": "\(subject)"]
        if let group = try? GroupSubject(parsing: subject) { context["group_id"] = "\(group.groupID.rawValue)" }
        if let id = headers[JetStreamHeader.msgID] {
            context[subject.hasPrefix("app.event.") ? "event_id" : "command_id"] = "\(id)"
        }
        return context
    }
}
