import CNATS
import Foundation
import Synchronization

/// A subscription bound to a durable pull consumer. Several `PullConsumer`s (in one process or
/// many) may bind the same durable: the server spreads messages over them.
///
/// One `fetch` at a time per instance; bind more instances to fetch in parallel.
public final class PullConsumer: Sendable {
    public let stream: String
    public let durable: String
    private let connection: NATSConnection
    private let subscription: Mutex<Subscription?>

    fileprivate init(connection: NATSConnection, stream: String, durable: String, subscription: OpaquePointer) {
        self.connection = connection
        self.stream = stream
        self.durable = durable
        self.subscription = Mutex(Subscription(subscription))
    }

    /// Owns the libnats subscription. libnats' acknowledgements reach the subscription through
    /// each message (`msg->sub`) without holding a reference to it, so every fetched message holds
    /// this: the subscription is freed only once the consumer is closed and the last of its
    /// messages is gone, and acknowledging a message after `close()` cannot touch freed memory.
    final class Subscription: Sendable {
        let pointer: SendablePointer

        init(_ pointer: OpaquePointer) {
            self.pointer = SendablePointer(pointer)
        }

        deinit {
            natsSubscription_Destroy(pointer.pointer)
        }
    }

    /// Waits up to `expires` for up to `batch` messages; returns what arrived (possibly none).
    ///
    /// It returns as soon as anything is there: libnats first asks for what is available now, and
    /// waits only when that is nothing.
    public func fetch(batch: Int, expires: Duration = .seconds(1)) async throws -> [JetStreamMessage] {
        try await fetch(operation: { [stream, durable] in "fetch from \(stream)/\(durable)" }) { list, sub, code in
            natsSubscription_Fetch(&list, sub, Int32(batch), expires.milliseconds, &code)
        }
    }

    /// Up to `batch` of the messages available right now, without waiting for more: one round trip
    /// to the server, whose answer is awaited at most `answerWithin`. When nothing at all is
    /// available, libnats 3.4 waits out `answerWithin`, so keep it short; an answer arriving later
    /// is not lost (the next fetch takes it).
    public func fetchAvailable(batch: Int, answerWithin: Duration = .seconds(1)) async throws -> [JetStreamMessage] {
        try await fetch(operation: { [stream, durable] in "fetch available from \(stream)/\(durable)" }) { list, sub, code in
            var request = jsFetchRequest()
            jsFetchRequest_Init(&request)
            request.Batch = Int32(batch)
            request.Expires = answerWithin.nanoseconds
            request.NoWait = true
            let status = natsSubscription_FetchRequest(&list, sub, &request)
            // "No messages" is the server's answer to a request it cannot fill at all.
            return status == NATS_NOT_FOUND ? NATS_TIMEOUT : status
        }
    }

    /// `operation` names the call in an error; it is made only then (fetches are on the hot path).
    private func fetch(operation: @escaping @Sendable () -> String,
                       _ call: @escaping @Sendable (inout natsMsgList, OpaquePointer, inout jsErrCode) -> natsStatus)
        async throws -> [JetStreamMessage] {
        let executor = connection.executor
        return try await executor.run { [self] in
            guard let sub = subscription.withLock({ $0 }) else {
                throw NATSError(kind: .connectionClosed, operation: operation(), message: "the consumer is closed")
            }
            var list = natsMsgList()
            var code = jsErrCode(rawValue: 0)
            let status = call(&list, sub.pointer.pointer, &code)
            defer { natsMsgList_Destroy(&list) }
            if status == NATS_TIMEOUT && list.Count == 0 { return [] }
            if status != NATS_OK && list.Count == 0 {
                throw NATSError(status: status, jetStreamCode: code, operation: operation())
            }
            var messages: [JetStreamMessage] = []
            messages.reserveCapacity(Int(list.Count))
            for index in 0..<Int(list.Count) {
                guard let raw = list.Msgs[index] else { continue }
                // Take ownership so natsMsgList_Destroy frees only the array.
                list.Msgs[index] = nil
                messages.append(JetStreamMessage(raw, executor: executor, subscription: sub))
            }
            return messages
        }
    }

    /// The server's view of this consumer: lag, unacknowledged and redelivered counts.
    public func info() async throws -> ConsumerInfo {
        try await connection.jetStream.consumerInfo(stream: stream, durable: durable)
    }

    /// Stops fetching; the durable consumer stays on the server. Messages fetched before can still
    /// be acknowledged.
    public func close() async {
        guard let sub = subscription.withLock({ current -> Subscription? in
            defer { current = nil }
            return current
        }) else { return }
        _ = try? await connection.executor.run {
            // The durable was created by `ensureConsumer`, not by this subscription, so
            // unsubscribing only removes our interest; the consumer and its position stay.
            natsSubscription_Unsubscribe(sub.pointer.pointer)
        }
    }

    deinit {
        if let sub = subscription.withLock({ $0 }) {
            natsSubscription_Unsubscribe(sub.pointer.pointer)
        }
    }
}

extension JetStream {
    /// Creates the durable consumer, or updates it when its configuration differs, then binds a
    /// pull subscription to it.
    public func pullConsumer(stream: String, config: ConsumerConfig) async throws -> PullConsumer {
        try await ensureConsumer(stream: stream, config: config)
        let connection = self.connection
        let sub = try await retryingTransientFailures { try await connection.executor.run {
            let strings = CStrings()
            var subOptions = jsSubOptions()
            jsSubOptions_Init(&subOptions)
            subOptions.Stream = strings.copy(stream)
            subOptions.Consumer = strings.copy(config.durable)
            subOptions.ManualAck = true
            var sub: OpaquePointer?
            var code = jsErrCode(rawValue: 0)
            try NATSError.check(
                js_PullSubscribe(&sub, connection.jetStreamContext, config.filterSubject ?? "", config.durable, nil, &subOptions, &code),
                "bind pull consumer \(stream)/\(config.durable)", jetStreamCode: code)
            return SendablePointer(sub!)
        } }
        return PullConsumer(connection: connection, stream: stream, durable: config.durable, subscription: sub.pointer)
    }

    /// Transient failures (a leader election) are retried for up to 30 s.
    @discardableResult
    public func ensureConsumer(stream: String, config: ConsumerConfig) async throws -> StreamReconciliation {
        try await retryingTransientFailures { try await connection.executor.run { [connection] in
            let existing: ConsumerInfo?
            do {
                existing = try Self.consumerInfo(connection, stream: stream, durable: config.durable)
            } catch let error as NATSError where error.kind == .consumerNotFound || error.kind == .notFound {
                existing = nil
            }
            if let existing, existing.config.matches(config) { return .unchanged }
            let strings = CStrings()
            var cConfig = jsConsumerConfig()
            jsConsumerConfig_Init(&cConfig)
            cConfig.Durable = strings.copy(config.durable)
            cConfig.FilterSubject = strings.copy(config.filterSubject)
            cConfig.AckPolicy = js_AckExplicit
            cConfig.DeliverPolicy = js_DeliverAll
            cConfig.AckWait = config.ackWait.nanoseconds
            cConfig.MaxDeliver = Int64(config.maxDeliver)
            cConfig.MaxAckPending = Int64(config.maxAckPending)
            var backoff = config.backoff.map(\.nanoseconds)
            var info: UnsafeMutablePointer<jsConsumerInfo>?
            var code = jsErrCode(rawValue: 0)
            let status = backoff.withUnsafeMutableBufferPointer { buffer in
                cConfig.BackOff = buffer.isEmpty ? nil : buffer.baseAddress
                cConfig.BackOffLen = Int32(buffer.count)
                return existing == nil
                    ? js_AddConsumer(&info, connection.jetStreamContext, stream, &cConfig, nil, &code)
                    : js_UpdateConsumer(&info, connection.jetStreamContext, stream, &cConfig, nil, &code)
            }
            jsConsumerInfo_Destroy(info)
            try NATSError.check(status, "\(existing == nil ? "create" : "update") consumer \(stream)/\(config.durable)",
                                jetStreamCode: code)
            return existing == nil ? .created : .updated
        } }
    }

    public func consumerInfo(stream: String, durable: String) async throws -> ConsumerInfo {
        try await connection.executor.run { [connection] in
            try Self.consumerInfo(connection, stream: stream, durable: durable)
        }
    }

    public func deleteConsumer(stream: String, durable: String) async throws {
        try await connection.executor.run { [connection] in
            var code = jsErrCode(rawValue: 0)
            try NATSError.check(js_DeleteConsumer(connection.jetStreamContext, stream, durable, nil, &code),
                                "delete consumer \(stream)/\(durable)", jetStreamCode: code)
        }
    }

    static func consumerInfo(_ connection: NATSConnection, stream: String, durable: String) throws -> ConsumerInfo {
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetConsumerInfo(&info, connection.jetStreamContext, stream, durable, nil, &code)
        defer { jsConsumerInfo_Destroy(info) }
        try NATSError.check(status, "get consumer \(stream)/\(durable)", jetStreamCode: code)
        guard let info, let c = info.pointee.Config?.pointee else {
            throw NATSError(kind: .other, operation: "get consumer \(durable)", message: "no configuration in the answer")
        }
        let backoff = (0..<Int(c.BackOffLen)).map { Duration(nanoseconds: c.BackOff[$0]) }
        var config = ConsumerConfig(
            durable: String(optionalCString: c.Durable) ?? durable,
            filterSubject: String(optionalCString: c.FilterSubject).flatMap { $0.isEmpty ? nil : $0 },
            ackWait: Duration(nanoseconds: c.AckWait), maxDeliver: Int(c.MaxDeliver), backoff: backoff,
            maxAckPending: Int(c.MaxAckPending))
        config.maxRequestBatch = Int(c.MaxRequestBatch)
        return ConsumerInfo(config: config, pending: info.pointee.NumPending, ackPending: Int(info.pointee.NumAckPending),
                            redelivered: Int(info.pointee.NumRedelivered),
                            ackFloorStreamSequence: info.pointee.AckFloor.Stream)
    }
}
