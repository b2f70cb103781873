import CNATS
import Foundation
import Synchronization

/// A live core NATS message.
public struct NATSMessage: Sendable {
    public let subject: String
    public let replyTo: String?
    public let payload: Data
    public let headers: NATSHeaders
}

/// A core NATS subscription delivering live messages as an `AsyncSequence`.
///
/// Messages are buffered up to `bufferSize`; past that the newest are dropped and counted in
/// `droppedCount` (a consumer that cannot keep up must notice, not stall the connection).
public final class NATSSubscription: AsyncSequence, Sendable {
    public typealias Element = NATSMessage

    private let stream: AsyncStream<NATSMessage>
    private let box: SubscriptionBox
    private let subscription: Mutex<SendablePointer?>
    private let executor: BlockingExecutor
    public let subject: String

    init(connection: NATSConnection, subject: String, queue: String?, bufferSize: Int) throws {
        let (stream, continuation) = AsyncStream<NATSMessage>.makeStream(bufferingPolicy: .bufferingOldest(bufferSize))
        let box = SubscriptionBox(continuation: continuation)
        let closure = Unmanaged.passRetained(box).toOpaque()
        var sub: OpaquePointer?
        let status = queue.map { natsConnection_QueueSubscribe(&sub, connection.connection, subject, $0, onMessage, closure) }
            ?? natsConnection_Subscribe(&sub, connection.connection, subject, onMessage, closure)
        guard status == NATS_OK, let sub else {
            Unmanaged<SubscriptionBox>.fromOpaque(closure).release()
            throw NATSError(status: status, operation: "subscribe to \(subject)")
        }
        // Released (and the sequence finished) after the last callback, once the subscription closes.
        natsSubscription_SetOnCompleteCB(sub, onComplete, closure)
        // The application-side buffer is the bound; keep libnats' own queue generous.
        natsSubscription_SetPendingLimits(sub, Int32(Swift.max(bufferSize, 65_536)), 256 * 1024 * 1024)
        self.stream = stream
        self.box = box
        self.subscription = Mutex(SendablePointer(sub))
        self.executor = connection.executor
        self.subject = subject
    }

    public func makeAsyncIterator() -> AsyncStream<NATSMessage>.Iterator {
        stream.makeAsyncIterator()
    }

    /// Messages dropped because the buffer was full.
    public var droppedCount: Int { box.dropped.withLock { $0 } }

    /// Stops the subscription; iteration ends after the messages already buffered.
    public func unsubscribe() async {
        guard let sub = subscription.withLock({ pointer -> SendablePointer? in
            defer { pointer = nil }
            return pointer
        }) else { return }
        _ = try? await executor.run {
            natsSubscription_Unsubscribe(sub.pointer)
            natsSubscription_Destroy(sub.pointer)
        }
    }

    deinit {
        if let sub = subscription.withLock({ $0 }) {
            natsSubscription_Unsubscribe(sub.pointer)
            natsSubscription_Destroy(sub.pointer)
        }
    }
}

final class SubscriptionBox: Sendable {
    let continuation: AsyncStream<NATSMessage>.Continuation
    let dropped = Mutex(0)

    init(continuation: AsyncStream<NATSMessage>.Continuation) {
        self.continuation = continuation
    }
}

private func onMessage(_ connection: OpaquePointer?, _ sub: OpaquePointer?, _ message: OpaquePointer?,
                       _ closure: UnsafeMutableRawPointer?) {
    guard let message else { return }
    defer { natsMsg_Destroy(message) }
    guard let closure else { return }
    let box = Unmanaged<SubscriptionBox>.fromOpaque(closure).takeUnretainedValue()
    let delivered = NATSMessage(
        subject: String(optionalCString: natsMsg_GetSubject(message)) ?? "",
        replyTo: String(optionalCString: natsMsg_GetReply(message)),
        payload: payloadData(of: message),
        headers: NATSHeaders.read(from: message))
    if case .dropped = box.continuation.yield(delivered) {
        box.dropped.withLock { $0 += 1 }
    }
}

private func onComplete(_ closure: UnsafeMutableRawPointer?) {
    guard let closure else { return }
    let box = Unmanaged<SubscriptionBox>.fromOpaque(closure).takeRetainedValue()
    box.continuation.finish()
}
