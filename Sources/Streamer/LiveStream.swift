import Contracts
import NIOCore

/// One SSE stream, written by its connection's event loop.
///
/// The fan-out hands each event loop its streams once per event (not a task wake-up and a hop per
/// stream), and an idle stream costs this object, its state and its connection — no task. The
/// bytes go out through the connection's `SSEConnectionHandler`, below Hummingbird's router.
///
/// Thread safety: everything except `init` and `userID` runs on `eventLoop` (asserted); the
/// catch-up task comes back to it with `caughtUp` / `catchUpFailed`.
final class LiveStream: @unchecked Sendable {
    enum End: Sendable, Equatable {
        /// The stream is complete (member removed, group deleted, server shutting down): the
        /// response gets its final chunk.
        case finished
        /// The client was too slow: the connection is cut.
        case tooSlow
        /// The client went away.
        case closed
        /// A replay from JetStream failed: the connection is cut; the client resumes later.
        case failed
    }

    let connection: SSEConnectionHandler
    let eventLoop: any EventLoop
    let userID: String
    private var state: LiveStreamState
    private let resumeAfter: Int64?
    private var over = false
    /// A shutdown that came before the response head: sent as soon as the stream starts.
    private var pendingShutdown: StreamBytes?
    private let catchUp: @Sendable (LiveStream, _ after: Int64, _ through: Int64?) -> Void
    private let onEnd: @Sendable (LiveStream, End) -> Void
    /// Whether the stream has ended (on the event loop).
    var isOver: Bool {
        eventLoop.assertInEventLoop()
        return over
    }

    /// Its place in the fan-out's list for its event loop (owned by GroupFanout, under its lock).
    var slot = -1

    /// - Parameters:
    ///   - catchUp: replays the group's events after `after` (through `through`) into the stream
    ///     with `connection.writeReplayed`, then calls `caughtUp`; started on the event loop, runs
    ///     elsewhere.
    ///   - onEnd: called once when the stream ends, for any reason, on the event loop.
    init(connection: SSEConnectionHandler, userID: String, capacity: Int, resumeAfter: Int64?,
         catchUp: @escaping @Sendable (LiveStream, _ after: Int64, _ through: Int64?) -> Void,
         onEnd: @escaping @Sendable (LiveStream, End) -> Void) {
        self.connection = connection
        eventLoop = connection.eventLoop
        self.userID = userID
        state = LiveStreamState(userID: userID, capacity: capacity)
        self.resumeAfter = resumeAfter
        self.catchUp = catchUp
        self.onEnd = onEnd
    }

    /// The response head is written: writes the `retry:` line, then replays what the client
    /// missed or writes what arrived meanwhile, and goes live.
    func start(retryLine: StreamBytes) {
        eventLoop.assertInEventLoop()
        guard !over else { return }
        if let shutdownLine = pendingShutdown {
            connection.write(shutdownLine)
            connection.flush()
            end(.finished)
            return
        }
        connection.write(retryLine)
        perform(state.start(resumeAfter: resumeAfter))
        connection.flush()
        writePendingNotice()
    }

    /// A live event of the group.
    func deliver(_ event: RenderedEvent) {
        deliver(CollectionOfOne(event))
    }

    /// Live events of the group, in order (a run appended as one message): written together and
    /// flushed once.
    func deliver(_ events: some Collection<RenderedEvent>) {
        eventLoop.assertInEventLoop()
        var written = false
        defer { if written && !over { connection.flush() } }
        // Whether the client had room when the run came: its own writes fill the buffer, and a
        // client that keeps up gets the whole run (a run is at most one buffer's worth of events).
        let writable = connection.isWritable
        for event in events {
            guard !over else { return }
            switch state.deliver(event, writable: writable) {
            case .ignore:
                continue
            case .write(let event):
                connection.write(StreamBytes(event))
                written = true
            case .writeAndEnd(let event):
                connection.write(StreamBytes(event))
                end(.finished)
                return
            case .catchUp(let after, let through):
                catchUp(self, after, through)
            case .drop:
                end(.tooSlow)
                return
            }
        }
    }

    /// The process-wide heartbeat: a comment, so a vanished client is noticed and proxies keep
    /// the connection open.
    func heartbeat(_ ping: StreamBytes) {
        eventLoop.assertInEventLoop()
        guard state.wantsHeartbeat(writable: connection.isWritable) else { return }
        connection.write(ping)
        connection.flush()
        writePendingNotice()
    }

    /// What a notice is about: one of each kind waits at most.
    enum NoticeKind: Int, CaseIterable {
        /// Who views the group (presence signals).
        case presence
        /// The user's unread notifications (the bell).
        case bell
    }

    /// A notice for the stream's client. Only the latest of each kind counts: one that cannot be
    /// written now (catching up, no room) waits and replaces the one before.
    func notice(_ bytes: StreamBytes, kind: NoticeKind = .presence) {
        eventLoop.assertInEventLoop()
        pendingNotices[kind.rawValue] = bytes
        writePendingNotice()
    }

    private var pendingNotices = [StreamBytes?](repeating: nil, count: NoticeKind.allCases.count)

    private func writePendingNotice() {
        guard !over, pendingNotices.contains(where: { $0 != nil }), state.wantsHeartbeat(writable: connection.isWritable) else { return }
        for index in pendingNotices.indices {
            guard let bytes = pendingNotices[index] else { continue }
            pendingNotices[index] = nil
            connection.write(bytes)
        }
        connection.flush()
    }

    /// Graceful shutdown: tell the client when to reconnect, then end.
    func shutdown(retryLine: StreamBytes) {
        eventLoop.assertInEventLoop()
        guard !over else { return }
        if state.phase == .waiting {
            pendingShutdown = retryLine
            return
        }
        connection.write(retryLine)
        end(.finished)
    }

    /// The catch-up is done (`last`: the last version it wrote; `ended`: it wrote the final event).
    func caughtUp(last: Int64, ended: Bool) {
        eventLoop.execute { [self] in
            guard !over else { return }
            perform(state.caughtUp(last: last, ended: ended))
            connection.flush()
            writePendingNotice()
        }
    }

    /// The catch-up failed (JetStream unavailable): end the stream; the client reconnects and
    /// resumes from its Last-Event-ID.
    func catchUpFailed() {
        eventLoop.execute { [self] in end(.failed) }
    }

    /// Ends the stream once, whatever ends it first.
    func end(_ reason: End) {
        eventLoop.assertInEventLoop()
        guard !over else { return }
        over = true
        _ = state.end()
        if reason == .tooSlow || reason == .failed { connection.close() }
        connection.streamEnded(reason)
        onEnd(self, reason)
    }

    private func perform(_ steps: [LiveStreamState.Step]) {
        for step in steps {
            switch step {
            case .write(let event): connection.write(StreamBytes(event))
            case .catchUp(let after, let through): catchUp(self, after, through)
            case .end: end(.finished)
            case .drop: end(.tooSlow)
            }
        }
    }
}
