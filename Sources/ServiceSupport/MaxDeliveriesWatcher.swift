import Foundation
import Logging
import NATS

/// Moves the messages a consumer gave up on to the dead-letter queue. When a message reaches
/// `max_deliver` without an acknowledgement (for instance because it crashes the process every
/// time), JetStream stops delivering it and publishes a `MAX_DELIVERIES` advisory; this watcher
/// reads the message from the stream by its sequence and dead-letters it. Every replica watches;
/// the dead-letter message id (stream + sequence) keeps one copy.
public final class MaxDeliveriesWatcher: Sendable {
    private let subscription: NATSSubscription
    private let task: Task<Void, Never>

    public static func advisorySubject(stream: String, durable: String) -> String {
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.\(stream).\(durable)"
    }

    private struct Advisory: Decodable {
        let stream: String
        let stream_seq: UInt64
        let deliveries: UInt64?
    }

    public init(connection: NATSConnection, stream: String, durable: String, deadLetters: DeadLetterQueue,
                logger: Logger) async throws {
        let subscription = try await connection.subscribe(Self.advisorySubject(stream: stream, durable: durable))
        self.subscription = subscription
        let jetStream = connection.jetStream
        task = Task {
            for await advisory in subscription {
                guard let notice = try? JSONDecoder().decode(Advisory.self, from: advisory.payload) else { continue }
                do {
                    guard let message = try await jetStream.message(stream: notice.stream, sequence: notice.stream_seq) else { continue }
                    try await deadLetters.send(
                        subject: message.subject, payload: message.payload, stream: notice.stream, sequence: notice.stream_seq,
                        deliveryCount: notice.deliveries ?? 0,
                        error: "not acknowledged after \(notice.deliveries ?? 0) deliveries; the server stopped delivering it")
                    logger.error("message dead-lettered after its last delivery", metadata: [
                        "subject": "\(message.subject)", "stream.sequence": "\(notice.stream_seq)"])
                } catch {
                    logger.error("could not dead-letter a message the server gave up on", metadata: [
                        "stream.sequence": "\(notice.stream_seq)", "error": "\(error)"])
                }
            }
        }
    }

    public func stop() async {
        await subscription.unsubscribe()
        await task.value
    }
}
