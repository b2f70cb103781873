import Foundation
import Metrics
import NATS

/// Stores a command in JetStream and returns only once JetStream acknowledged it.
public protocol CommandPublishing: Sendable {
    /// Throws when the command may not be stored (NATS down, no ack in time, no stream).
    func publish(subject: String, payload: Data, messageID: String) async throws -> PublishAck
}

/// Publishes on a live connection only: while the client is disconnected, libnats would keep the
/// message in its reconnect buffer and send it after reconnecting — after the caller was told the
/// command was not stored. So a publish fails at once unless the connection is up. (A connection
/// lost after the check, or an ack lost on the way back, still leaves "not acknowledged, maybe
/// stored": the caller sees 503, and a retry with the same Idempotency-Key stores nothing new.)
public struct JetStreamCommandPublisher: CommandPublishing {
    public struct NotConnected: Error, CustomStringConvertible {
        public var description: String { "not connected to NATS" }
    }

    let connection: NATSConnection
    let jetStream: JetStream
    private let published = Counter(label: "commands_published_total")
    private let duplicates = Counter(label: "commands_duplicate_total")
    private let failures = Counter(label: "command_publish_failures_total")

    public init(connection: NATSConnection) {
        self.connection = connection
        jetStream = connection.jetStream
    }

    public func publish(subject: String, payload: Data, messageID: String) async throws -> PublishAck {
        do {
            guard connection.isConnected else { throw NotConnected() }
            let ack = try await jetStream.publish(subject, payload, msgID: messageID)
            (ack.duplicate ? duplicates : published).increment()
            return ack
        } catch {
            failures.increment()
            throw error
        }
    }
}
