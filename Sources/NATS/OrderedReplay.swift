import CNATS
import Foundation
import Synchronization

extension JetStream {
    /// Every message of `stream` matching `filter`, from `startSequence` up to the last one stored
    /// when the replay began, in stream order, through an ordered (ephemeral, flow-controlled)
    /// consumer. Iteration ends when it has caught up.
    /// `startRetryWindow`: how long the start (the stream's end, the ordered consumer) is retried
    /// while it fails transiently, as during a leader election; zero fails at once.
    public func replay(stream: String, filter: String, from startSequence: UInt64 = 1,
                       idleTimeout: Duration = .seconds(5), startRetryWindow: Duration = .seconds(30)) -> OrderedReplay {
        OrderedReplay(connection: connection, stream: stream, filter: filter, startSequence: max(1, startSequence),
                      idleTimeout: idleTimeout, startRetryWindow: startRetryWindow)
    }

    /// Collects a whole replay into an array.
    public func replayAll(stream: String, filter: String, from startSequence: UInt64 = 1) async throws -> [StoredMessage] {
        var messages: [StoredMessage] = []
        for try await message in replay(stream: stream, filter: filter, from: startSequence) {
            messages.append(message)
        }
        return messages
    }
}

public struct OrderedReplay: AsyncSequence, Sendable {
    public typealias Element = StoredMessage

    let connection: NATSConnection
    let stream: String
    let filter: String
    let startSequence: UInt64
    let idleTimeout: Duration
    let startRetryWindow: Duration

    public func makeAsyncIterator() -> Iterator {
        Iterator(source: ReplaySource(replay: self))
    }

    public struct Iterator: AsyncIteratorProtocol {
        let source: ReplaySource
        var buffer: [StoredMessage] = []
        var index = 0

        public mutating func next() async throws -> StoredMessage? {
            if index == buffer.count {
                buffer = try await source.nextChunk()
                index = 0
                if buffer.isEmpty { return nil }
            }
            defer { index += 1 }
            return buffer[index]
        }
    }
}

/// Owns the ordered subscription of one replay and reads it in chunks on a blocking thread.
final class ReplaySource: Sendable {
    private struct State {
        var subscription: SendablePointer?
        var started = false
        var finished = false
        /// The last stream sequence to deliver, fixed when the replay starts.
        var endSequence: UInt64 = 0
    }

    private let replay: OrderedReplay
    private let state = Mutex(State())
    private static let chunkSize = 512

    /// A started replay: its ordered subscription and the last stream sequence it delivers.
    private struct Begun: Sendable {
        let subscription: SendablePointer
        let end: UInt64
    }

    init(replay: OrderedReplay) {
        self.replay = replay
    }

    /// The next messages in order; empty once caught up.
    func nextChunk() async throws -> [StoredMessage] {
        let replay = self.replay
        if state.withLock({ !$0.started && !$0.finished }) {
            // Retried (a leader election) between tries on no thread of the connection's.
            let begun = try await retryingTransientFailures(window: replay.startRetryWindow) {
                try await replay.connection.executor.run { [self] in try start().map { Begun(subscription: $0.0, end: $0.1) } }
            }
            state.withLock { state in
                state.started = true
                if let begun {
                    state.subscription = begun.subscription
                    state.endSequence = begun.end
                } else {
                    state.finished = true
                }
            }
        }
        return try await replay.connection.executor.run { [self] in
            try state.withLock { state in
                if state.finished { return [] }
                guard let sub = state.subscription?.pointer else { return [] }
                var chunk: [StoredMessage] = []
                while chunk.count < Self.chunkSize {
                    var raw: OpaquePointer?
                    // Wait for the first message of a chunk; after that take what is queued.
                    let timeout = chunk.isEmpty ? replay.idleTimeout.milliseconds : 0
                    let status = natsSubscription_NextMsg(&raw, sub, timeout)
                    if status == NATS_TIMEOUT && !chunk.isEmpty { break }
                    if status == NATS_TIMEOUT && pendingIsZero(sub) {
                        // A wildcard filter whose last match is below the stream's end.
                        finish(&state)
                        break
                    }
                    try NATSError.check(status, "replay \(replay.filter) from \(replay.stream)")
                    guard let raw else { break }
                    defer { natsMsg_Destroy(raw) }
                    var meta: UnsafeMutablePointer<jsMsgMetaData>?
                    try NATSError.check(natsMsg_GetMetaData(&meta, raw), "read replay metadata")
                    defer { jsMsgMetaData_Destroy(meta) }
                    let m = meta!.pointee
                    chunk.append(StoredMessage(
                        subject: String(optionalCString: natsMsg_GetSubject(raw)) ?? "", payload: payloadData(of: raw),
                        headers: NATSHeaders.read(from: raw), sequence: m.Sequence.Stream,
                        timestamp: Date(timeIntervalSince1970: Double(m.Timestamp) / 1e9)))
                    // Not `NumPending == 0`: nats-server 2.9 reports it lazily for wildcard filters.
                    if m.Sequence.Stream >= state.endSequence {
                        finish(&state)
                        break
                    }
                }
                return chunk
            }
        }
    }

    /// Fixes the end of the replay, then subscribes; nil when there is nothing to replay. The end
    /// is the filter's last message for an exact subject, else the stream's last message.
    private func start() throws -> (SendablePointer, UInt64)? {
        let js = replay.connection.jetStreamContext
        var code = jsErrCode(rawValue: 0)
        let end: UInt64
        if replay.filter.contains("*") || replay.filter.contains(">") {
            var info: UnsafeMutablePointer<jsStreamInfo>?
            let status = js_GetStreamInfo(&info, js, replay.stream, nil, &code)
            defer { jsStreamInfo_Destroy(info) }
            try NATSError.check(status, "start replay of \(replay.filter)", jetStreamCode: code)
            end = info?.pointee.State.LastSeq ?? 0
        } else {
            var last: OpaquePointer?
            let status = js_GetLastMsg(&last, js, replay.stream, replay.filter, nil, &code)
            if status == NATS_NOT_FOUND { return nil }
            try NATSError.check(status, "start replay of \(replay.filter)", jetStreamCode: code)
            end = last.map { natsMsg_GetSequence($0) } ?? 0
            natsMsg_Destroy(last)
        }
        guard end >= replay.startSequence else { return nil }

        let strings = CStrings()
        var options = jsSubOptions()
        jsSubOptions_Init(&options)
        options.Stream = strings.copy(replay.stream)
        options.Ordered = true
        options.Config.DeliverPolicy = js_DeliverByStartSequence
        options.Config.OptStartSeq = replay.startSequence
        var sub: OpaquePointer?
        try NATSError.check(js_SubscribeSync(&sub, js, replay.filter, nil, &options, &code),
                            "start replay of \(replay.filter)", jetStreamCode: code)
        guard let sub else { return nil }
        // The server's flow control paces an ordered consumer, but a replay of a whole stream can
        // still run ahead of a reader that writes to a database between chunks: allow a deep
        // local queue instead of dropping (which would fail the replay as a slow consumer).
        natsSubscription_SetPendingLimits(sub, -1, 1 << 30)
        return (SendablePointer(sub), end)
    }

    /// Whether the replay's consumer has nothing left to deliver (asked of the server).
    private func pendingIsZero(_ sub: OpaquePointer) -> Bool {
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var code = jsErrCode(rawValue: 0)
        defer { jsConsumerInfo_Destroy(info) }
        guard natsSubscription_GetConsumerInfo(&info, sub, nil, &code) == NATS_OK, let info else { return false }
        return info.pointee.NumPending == 0 && info.pointee.NumAckPending == 0
    }

    private func finish(_ state: inout State) {
        state.finished = true
        if let sub = state.subscription?.pointer {
            natsSubscription_Unsubscribe(sub)
            natsSubscription_Destroy(sub)
        }
        state.subscription = nil
    }

    deinit {
        if let sub = state.withLock({ $0.subscription })?.pointer {
            natsSubscription_Unsubscribe(sub)
            natsSubscription_Destroy(sub)
        }
    }
}
