import CNATS
import Foundation
import Synchronization

/// A message fetched from a pull consumer. Acknowledge it with `ack()`, or `nak`, `term` or
/// `inProgress`; a message that is never acknowledged is delivered again after `ackWait`.
///
/// Headers and metadata are parsed on first use and cached (as nats.go does), so a consumer that
/// only needs the payload pays for nothing else.
public final class JetStreamMessage: Sendable {
    public struct Metadata: Sendable, Equatable {
        public let stream: String
        public let consumer: String
        public let streamSequence: UInt64
        public let consumerSequence: UInt64
        /// 1 on first delivery, 2 on the first redelivery, …
        public let deliveryCount: UInt64
        /// Messages still pending for the consumer after this one.
        public let pending: UInt64
        public let timestamp: Date

        static let unknown = Metadata(stream: "", consumer: "", streamSequence: 0, consumerSequence: 0, deliveryCount: 0,
                                      pending: 0, timestamp: Date(timeIntervalSince1970: 0))
    }

    private struct Cache {
        var headers: NATSHeaders?
        var metadata: Metadata?
    }

    /// The libnats message; owned until deinit. Its subject, reply and payload never change, so
    /// they are read without the lock. Header parsing and acks mutate it: they take the lock.
    private let message: SendablePointer
    private let cache = Mutex(Cache())
    private let executor: BlockingExecutor
    /// Kept alive while this message is: acknowledging goes through it.
    private let subscription: PullConsumer.Subscription

    /// Takes ownership of `message`.
    init(_ message: OpaquePointer, executor: BlockingExecutor, subscription: PullConsumer.Subscription) {
        self.message = SendablePointer(message)
        self.executor = executor
        self.subscription = subscription
    }

    public var subject: String { String(optionalCString: natsMsg_GetSubject(message.pointer)) ?? "" }

    public var payload: Data { payloadData(of: message.pointer) }

    public var headers: NATSHeaders {
        cache.withLock { cache in
            if let headers = cache.headers { return headers }
            let headers = NATSHeaders.read(from: message.pointer)
            cache.headers = headers
            return headers
        }
    }

    /// Delivery metadata from the message's acknowledgement subject. (`unknown`, all zero, only
    /// for a message that did not come from a JetStream consumer, which `fetch` never returns.)
    public var metadata: Metadata {
        cache.withLock { cache in
            if let metadata = cache.metadata { return metadata }
            var meta: UnsafeMutablePointer<jsMsgMetaData>?
            guard natsMsg_GetMetaData(&meta, message.pointer) == NATS_OK, let m = meta?.pointee else { return .unknown }
            defer { jsMsgMetaData_Destroy(meta) }
            let metadata = Metadata(
                stream: String(optionalCString: m.Stream) ?? "", consumer: String(optionalCString: m.Consumer) ?? "",
                streamSequence: m.Sequence.Stream, consumerSequence: m.Sequence.Consumer, deliveryCount: m.NumDelivered,
                pending: m.NumPending, timestamp: Date(timeIntervalSince1970: Double(m.Timestamp) / 1e9))
            cache.metadata = metadata
            return metadata
        }
    }

    /// Acknowledges: the message is done and is not delivered again.
    public func ack() async throws { try await acknowledge(.ack) }

    /// Asks for redelivery, after `delay` when given (else at once).
    public func nak(delay: Duration? = nil) async throws { try await acknowledge(.nak(delay)) }

    /// Stops redelivery for good, without processing.
    public func term() async throws { try await acknowledge(.term) }

    /// Resets the ack timer: still working on it.
    public func inProgress() async throws { try await acknowledge(.inProgress) }

    enum Acknowledgement: Sendable {
        case ack
        case nak(Duration?)
        case term
        case inProgress
    }

    private func acknowledge(_ kind: Acknowledgement) async throws {
        try await executor.run { [self] in try acknowledgeNow(kind) }
    }

    /// Sends the acknowledgement from the current (blocking) thread.
    func acknowledgeNow(_ kind: Acknowledgement) throws {
        let message = self.message.pointer
        try cache.withLock { _ in
            let status: natsStatus
            switch kind {
            case .ack: status = natsMsg_Ack(message, nil)
            case .nak(nil): status = natsMsg_Nak(message, nil)
            case .nak(let delay?): status = natsMsg_NakWithDelay(message, delay.milliseconds, nil)
            case .term: status = natsMsg_Term(message, nil)
            case .inProgress: status = natsMsg_InProgress(message, nil)
            }
            try NATSError.check(status, "acknowledge message on \(String(optionalCString: natsMsg_GetSubject(message)) ?? "?")")
        }
    }

    deinit {
        natsMsg_Destroy(message.pointer)
    }
}

extension Array where Element == JetStreamMessage {
    /// Acknowledges every message with one hop to a blocking thread; stops at the first failure.
    public func ackAll() async throws {
        try await acknowledgeAll(.ack)
    }

    /// Hands every message back for redelivery now (to this or another consumer instance).
    public func nakAll() async throws {
        try await acknowledgeAll(.nak(nil))
    }

    /// Tells the server every message is still being worked on (resets their ack timers).
    public func inProgressAll() async throws {
        try await acknowledgeAll(.inProgress)
    }

    private func acknowledgeAll(_ kind: JetStreamMessage.Acknowledgement) async throws {
        guard let executor = first?.executorForBatch else { return }
        try await executor.run { [self] in
            for message in self { try message.acknowledgeNow(kind) }
        }
    }
}

extension JetStreamMessage {
    fileprivate var executorForBatch: BlockingExecutor { executor }
}
