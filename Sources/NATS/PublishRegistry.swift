import CNATS
import Synchronization

typealias PublishCompletion = @Sendable (Result<PublishAck, NATSError>) -> Void

/// Matches libnats' per-message acknowledgement callbacks to the Swift callers waiting for them.
///
/// Keyed by the address of the `natsMsg` that was published: libnats hands that same message back
/// to the ack handler, and the entry is removed before the message is freed, so an address reused
/// by a later message can never meet a stale entry.
final class PublishRegistry: Sendable {
    private let pending = Mutex<[UInt: PublishCompletion]>([:])
    private let permits: AsyncSemaphore

    init(permits: AsyncSemaphore) {
        self.permits = permits
    }

    func register(_ message: OpaquePointer, _ completion: @escaping PublishCompletion) {
        let key = UInt(bitPattern: message)
        pending.withLock { $0[key] = completion }
    }

    /// Completes and forgets the publish of `message`; returns whether it was still pending.
    @discardableResult
    func complete(_ message: OpaquePointer, with result: Result<PublishAck, NATSError>) -> Bool {
        let key = UInt(bitPattern: message)
        guard let completion = pending.withLock({ $0.removeValue(forKey: key) }) else { return false }
        permits.release()
        completion(result)
        return true
    }

    /// Fails every publish still waiting (the connection is going away).
    func failAll(operation: String) {
        let abandoned = pending.withLock { pending in
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        permits.release(abandoned.count)
        let error = NATSError(kind: .publishAbandoned, operation: operation,
                              message: "the connection closed before JetStream acknowledged the message")
        for completion in abandoned { completion(.failure(error)) }
    }

    var pendingCount: Int { pending.withLock { $0.count } }
}

/// libnats' `jsPubAckHandler`: called on a libnats thread once per asynchronously published
/// message, with either an acknowledgement or an error (including the `MaxWait` timeout).
func onPublishAcknowledged(
    _ context: OpaquePointer?, _ message: OpaquePointer?, _ ack: UnsafeMutablePointer<jsPubAck>?,
    _ ackError: UnsafeMutablePointer<jsPubAckErr>?, _ closure: UnsafeMutableRawPointer?
) {
    guard let message else { return }
    defer { natsMsg_Destroy(message) }
    guard let closure else { return }
    let registry = Unmanaged<PublishRegistry>.fromOpaque(closure).takeUnretainedValue()
    let result: Result<PublishAck, NATSError>
    if let ack {
        result = .success(PublishAck(
            stream: String(optionalCString: ack.pointee.Stream) ?? "",
            sequence: ack.pointee.Sequence,
            duplicate: ack.pointee.Duplicate))
    } else if let ackError {
        let subject = String(optionalCString: natsMsg_GetSubject(message)) ?? "?"
        result = .failure(NATSError(
            status: ackError.pointee.Err, jetStreamCode: ackError.pointee.ErrCode,
            operation: "publish to \(subject)", text: String(optionalCString: ackError.pointee.ErrText)))
    } else {
        result = .failure(NATSError(kind: .other, operation: "publish", message: "no acknowledgement and no error"))
    }
    registry.complete(message, with: result)
}
