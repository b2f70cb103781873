import CNATS
import Metrics

/// An error from libnats or from the JetStream server, with the operation that failed.
public struct NATSError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No server could be reached at connect time.
        case noServer
        case timeout
        case notFound
        case connectionClosed
        case noResponders
        /// `Nats-Expected-Last-Subject-Sequence` did not match (JetStream error 10071).
        case wrongLastSequence
        case streamNotFound
        case consumerNotFound
        /// The connection was closed while a publish was still waiting for its acknowledgement.
        case publishAbandoned
        case invalidArgument
        case other
    }

    public let kind: Kind
    /// The raw `natsStatus`, or 0 when the error did not come from a libnats call.
    public let status: UInt32
    /// The JetStream API error code (for example 10071), or 0.
    public let jetStreamCode: Int
    public let operation: String
    public let message: String

    /// JetStream error 10008: the cluster has no meta leader or the stream no leader for a moment.
    public static let temporarilyUnavailableCode = 10008

    /// A failure that clears on its own within seconds: no answer in time, nobody listening on the
    /// API subject, or JetStream "temporarily unavailable" (a leader election, for example the one
    /// a node that was cut off starts when it rejoins its cluster). Worth a retry, unlike the rest.
    public var isTransient: Bool {
        kind == .timeout || kind == .noResponders || jetStreamCode == Self.temporarilyUnavailableCode
    }

    public init(kind: Kind, operation: String, message: String, status: UInt32 = 0, jetStreamCode: Int = 0) {
        self.kind = kind
        self.operation = operation
        self.message = message
        self.status = status
        self.jetStreamCode = jetStreamCode
    }

    init(status: natsStatus, jetStreamCode: jsErrCode = jsErrCode(rawValue: 0), operation: String, text: String? = nil) {
        let code = Int(jetStreamCode.rawValue)
        let kind: Kind
        switch (status, code) {
        case (_, Int(JSStreamWrongLastSequenceErr.rawValue)): kind = .wrongLastSequence
        case (_, Int(JSStreamNotFoundErr.rawValue)): kind = .streamNotFound
        case (_, Int(JSConsumerNotFoundErr.rawValue)): kind = .consumerNotFound
        case (NATS_NO_SERVER, _): kind = .noServer
        case (NATS_TIMEOUT, _): kind = .timeout
        case (NATS_NOT_FOUND, _): kind = .notFound
        case (NATS_CONNECTION_CLOSED, _): kind = .connectionClosed
        case (NATS_NO_RESPONDERS, _): kind = .noResponders
        case (NATS_INVALID_ARG, _): kind = .invalidArgument
        default: kind = .other
        }
        var message = text ?? ""
        if message.isEmpty {
            // The thread-local detail libnats keeps for the last failed call on this thread.
            var lastStatus = NATS_OK
            if let detail = nats_GetLastError(&lastStatus), lastStatus == status {
                message = String(cString: detail)
            } else {
                message = String(cString: natsStatus_GetText(status))
            }
        }
        self.init(kind: kind, operation: operation, message: message, status: status.rawValue, jetStreamCode: code)
    }

    /// Throws when `status` is not `NATS_OK`.
    static func check(_ status: natsStatus, _ operation: @autoclosure () -> String, jetStreamCode: jsErrCode = jsErrCode(rawValue: 0)) throws(NATSError) {
        guard status != NATS_OK else { return }
        throw NATSError(status: status, jetStreamCode: jetStreamCode, operation: operation())
    }

    public var description: String {
        var text = "\(operation): \(message)"
        if jetStreamCode != 0 { text += " (JetStream error \(jetStreamCode))" }
        return text
    }
}

/// `body`, tried again with growing pauses (0.1 s doubling to 2 s) for up to `window` while it
/// fails transiently (`NATSError.isTransient`), as JetStream's API does during a leader election:
/// after a node of a cluster restarts or rejoins, it answers "temporarily unavailable" for some
/// 10 s. The pauses are `Task.sleep`, so a waiting caller holds none of the connection's blocking
/// threads; each try is one `executor.run` in `body`. Every retry counts in
/// `nats_transient_retries_total`; the error that ends a retried call says how many tries it had.
func retryingTransientFailures<T: Sendable>(window: Duration = .seconds(30), _ body: () async throws -> T) async throws -> T {
    let started = ContinuousClock.now
    var pause = Duration.milliseconds(100)
    var tries = 1
    while true {
        do {
            return try await body()
        } catch let error as NATSError where error.isTransient {
            guard ContinuousClock.now + pause < started + window else {
                guard tries > 1 else { throw error }
                throw NATSError(kind: error.kind, operation: error.operation,
                                message: "\(error.message) (\(tries) tries in \(ContinuousClock.now - started))",
                                status: error.status, jetStreamCode: error.jetStreamCode)
            }
            transientRetries.increment()
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(2))
            tries += 1
        }
    }
}

private let transientRetries = Counter(label: "nats_transient_retries_total")
