import Contracts
import NATS
import Sharding

/// The streams of DESIGN §3. Every service reconciles them at start.
///
/// Each stream holds one kind of subject only, so the engine's and the sink's consumers take no
/// filter subject: nats-server 2.9 works out a filtered consumer's pending count by scanning the
/// stream's message blocks (fixed in later releases), and with a thousand groups' subjects that
/// scan stalled the engine for seconds at a time (measured with the pipeline bench: 100k
/// commands, nats-server at 100% in `filteredPending`).
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
            // Each user's notification signals (DESIGN §9), a day long: a tab that reconnects
            // reads its bell's count afresh, and the stream lets a late subscriber catch up.
            StreamConfig(name: UserSubject.stream, subjects: [UserSubject.wildcard],
                         duplicateWindow: .seconds(Int64(Streams.duplicateWindowSeconds)), maxAge: .seconds(24 * 3600),
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
