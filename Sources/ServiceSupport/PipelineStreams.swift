import Contracts
import NATS
import Sharding

/// The streams of DESIGN §3. Every service reconciles them at start.
public enum PipelineStreams {
    public static let deadLetters = "DLQ"

    public static func all(replicas: Int) -> [StreamConfig] {
        [
            StreamConfig(name: Streams.commands, subjects: [SubjectKind.command.wildcard],
                         duplicateWindow: .seconds(Int64(Streams.duplicateWindowSeconds)), replicas: replicas),
            StreamConfig(name: Streams.events, subjects: [SubjectKind.event.wildcard],
                         duplicateWindow: .seconds(Int64(Streams.duplicateWindowSeconds)), replicas: replicas),
            // Messages a consumer gave up on, with the error, kept for an operator (30 days).
            StreamConfig(name: deadLetters, subjects: ["app.dlq.>"],
                         duplicateWindow: .seconds(Int64(Streams.duplicateWindowSeconds)), maxAge: .seconds(30 * 24 * 3600),
                         replicas: replicas),
        ]
    }

    public static func ensureAll(_ jetStream: JetStream, replicas: Int) async throws {
        for config in all(replicas: replicas) {
            try await jetStream.ensureStream(config)
        }
    }
}

extension ListenAddress: ListenAddressLike {}
