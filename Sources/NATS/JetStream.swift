import CNATS
import Foundation
import Synchronization

/// The JetStream API of a `NATSConnection`.
public struct JetStream: Sendable {
    let connection: NATSConnection

    /// Publishes one message and waits until JetStream stored it (or refused it).
    ///
    /// Errors: `.wrongLastSequence` when `Nats-Expected-Last-Subject-Sequence` did not match,
    /// `.timeout` when no acknowledgement came within `publishAckTimeout`, `.noResponders` when no
    /// stream captures the subject.
    public func publish(_ message: OutgoingMessage) async throws -> PublishAck {
        await connection.publishPermits.acquire()
        let slot = AckSlot()
        submit([message]) { _, result in slot.deliver(result) }
        return try await slot.value()
    }

    public func publish(_ subject: String, _ payload: Data, msgID: String? = nil,
                        expectedLastSubjectSequence: UInt64? = nil) async throws -> PublishAck {
        try await publish(OutgoingMessage(subject: subject, payload: payload, msgID: msgID,
                                          expectedLastSubjectSequence: expectedLastSubjectSequence))
    }

    /// Publishes many messages asynchronously and in order, at most `maxPendingPublishes`
    /// awaiting acknowledgement at a time, and returns one result per message, in order.
    public func publishBatch(_ messages: [OutgoingMessage]) async -> [Result<PublishAck, NATSError>] {
        guard !messages.isEmpty else { return [] }
        let collector = BatchCollector(count: messages.count)
        let chunkSize = max(1, connection.publishPermits.capacity / 2)
        var start = 0
        while start < messages.count {
            let end = min(start + chunkSize, messages.count)
            await connection.publishPermits.acquire(end - start)
            let offset = start
            // Chunks reach the server in order: the publishing thread runs submissions in order.
            submit(Array(messages[start..<end])) { index, result in
                collector.set(offset + index, result)
            }
            start = end
        }
        return await collector.results()
    }

    /// Hands messages to libnats on the connection's single publishing thread, so submissions keep
    /// their order, and returns without waiting for that thread: the caller waits only for the
    /// acknowledgements (one hand-over between threads per publish fewer). The caller holds one
    /// permit per message; `completion` runs exactly once per message, on a libnats thread or on
    /// the publishing thread on failure.
    private func submit(_ messages: [OutgoingMessage],
                        completion: @escaping @Sendable (Int, Result<PublishAck, NATSError>) -> Void) {
        let connection = self.connection
        let ackWait = connection.options.publishAckTimeout.milliseconds
        connection.publisher.submit { running in
            guard running else {
                // The publishing thread is shut down: the connection is closed.
                for index in messages.indices {
                    connection.publishPermits.release()
                    completion(index, .failure(NATSError(kind: .connectionClosed, operation: "publish",
                                                         message: "the connection is closed")))
                }
                return
            }
            var options = jsPubOptions()
            jsPubOptions_Init(&options)
            options.MaxWait = ackWait
            for (index, outgoing) in messages.enumerated() {
                let message: OpaquePointer
                do throws(NATSError) {
                    message = try connection.makeMessage(subject: outgoing.subject, payload: outgoing.payload,
                                                         headers: outgoing.headers)
                } catch {
                    connection.publishPermits.release()
                    completion(index, .failure(error))
                    continue
                }
                connection.publishRegistry.register(message) { completion(index, $0) }
                var owned: OpaquePointer? = message
                let status = js_PublishMsgAsync(connection.jetStreamContext, &owned, &options)
                if status != NATS_OK {
                    // libnats did not take the message: it is still ours and no callback will come.
                    connection.publishRegistry.complete(
                        message, with: .failure(NATSError(status: status, operation: "publish to \(outgoing.subject)")))
                    natsMsg_Destroy(owned)
                }
            }
        }
    }
}

/// Where a single publish waits for its acknowledgement, which may arrive before anyone waits.
private final class AckSlot: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<PublishAck, Error>)
        case done(Result<PublishAck, NATSError>)
    }

    private let state = Mutex(State.empty)

    func deliver(_ result: Result<PublishAck, NATSError>) {
        let waiter = state.withLock { state -> CheckedContinuation<PublishAck, Error>? in
            if case .waiting(let continuation) = state {
                state = .done(result)
                return continuation
            }
            state = .done(result)
            return nil
        }
        waiter?.resume(with: result.mapError { $0 as Error })
    }

    func value() async throws -> PublishAck {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<PublishAck, NATSError>? in
                if case .done(let result) = state { return result }
                state = .waiting(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready.mapError { $0 as Error }) }
        }
    }
}

/// Collects one result per message of a batch and hands them over once the last one arrives.
private final class BatchCollector: Sendable {
    private struct State {
        var results: [Result<PublishAck, NATSError>?]
        var remaining: Int
        var waiter: CheckedContinuation<[Result<PublishAck, NATSError>], Never>?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
    }

    func set(_ index: Int, _ result: Result<PublishAck, NATSError>) {
        let finished = state.withLock { state -> (CheckedContinuation<[Result<PublishAck, NATSError>], Never>, [Result<PublishAck, NATSError>])? in
            state.results[index] = result
            state.remaining -= 1
            guard state.remaining == 0, let waiter = state.waiter.take() else { return nil }
            return (waiter, state.results.map { $0! })
        }
        if let (waiter, results) = finished { waiter.resume(returning: results) }
    }

    func results() async -> [Result<PublishAck, NATSError>] {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [Result<PublishAck, NATSError>]? in
                if state.remaining == 0 { return state.results.map { $0! } }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
