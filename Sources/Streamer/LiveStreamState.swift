import Contracts

/// What one SSE stream does with each thing that happens to it, without doing it: no I/O, no
/// clock, no locks. `LiveStream` owns one, calls it on its connection's event loop, and carries out
/// what it returns. Every rule about order lives here and is unit-tested (LiveStreamStateTests):
///
/// - each group version is written at most once, in rising order (duplicates are skipped);
/// - a hole in the live sequence (the shared subscription dropped something) is filled from
///   JetStream before anything newer is written; events arriving meanwhile are held, in order;
/// - a client that leaves `capacity` events unwritten is too slow and is dropped (its
///   connection is the buffer: events still queued in the socket after it stopped being writable
///   count, and held events while it catches up count);
/// - the stream ends after the event that removes its member or deletes its group.
struct LiveStreamState {
    enum Phase: Equatable {
        /// The response head is not written yet: events are held.
        case waiting
        /// Events are written as they arrive.
        case live
        /// JetStream is being replayed into the stream: events are held until it is done.
        case catchingUp
        case ended
    }

    /// What to do with one delivered event.
    enum Delivery: Equatable {
        case ignore
        case write(RenderedEvent)
        /// Write it, then end the stream (the member was removed or the group deleted).
        case writeAndEnd(RenderedEvent)
        /// Replay the group's events after `after` (through `through`, if given) from JetStream,
        /// then call `caughtUp`.
        case catchUp(after: Int64, through: Int64?)
        /// The client is too slow: cut the connection.
        case drop
    }

    /// One step of a sequence of work (start, or the end of a catch-up).
    enum Step: Equatable {
        case write(RenderedEvent)
        case catchUp(after: Int64, through: Int64?)
        case end
        case drop
    }

    let userID: String
    let capacity: Int
    private(set) var phase: Phase = .waiting
    /// The last group version written (nil: nothing yet, and the client asked for no replay).
    private(set) var last: Int64?
    /// Events that arrived while waiting or catching up, in arrival order.
    private(set) var held: [RenderedEvent] = []
    /// Events written since the connection last had room (it is "not writable" past NIO's high
    /// water mark of pending bytes, on top of the kernel's socket buffer).
    private(set) var writtenWithoutRoom = 0

    init(userID: String, capacity: Int) {
        self.userID = userID
        self.capacity = capacity
    }

    /// The response head is out: replay what the client missed (`Last-Event-ID`), or write what
    /// arrived in the meantime and go live.
    mutating func start(resumeAfter: Int64?) -> [Step] {
        guard phase == .waiting else { return [] }
        if let resumeAfter {
            last = resumeAfter
            phase = .catchingUp
            return [.catchUp(after: resumeAfter, through: nil)]
        }
        phase = .live
        return drainHeld()
    }

    /// A live event for this stream's group. `writable` is whether the connection has room now.
    mutating func deliver(_ event: RenderedEvent, writable: Bool) -> Delivery {
        switch phase {
        case .ended:
            return .ignore
        case .waiting, .catchingUp:
            guard held.count < capacity else {
                phase = .ended
                held = []
                return .drop
            }
            held.append(event)
            return .ignore
        case .live:
            if writable {
                writtenWithoutRoom = 0
            } else {
                writtenWithoutRoom += 1
                if writtenWithoutRoom > capacity {
                    phase = .ended
                    return .drop
                }
            }
            return apply(event)
        }
    }

    /// The replay started by `.catchUp` is done: `last` is the last version it wrote, `ended` whether
    /// it wrote the stream's final event. Held events follow (those the replay already wrote are
    /// skipped).
    mutating func caughtUp(last replayed: Int64, ended: Bool) -> [Step] {
        guard phase == .catchingUp else { return [] }
        if ended {
            phase = .ended
            held = []
            return [.end]
        }
        last = max(last ?? replayed, replayed)
        phase = .live
        return drainHeld()
    }

    /// Whether a heartbeat comment should be written now (only to a live stream with room).
    func wantsHeartbeat(writable: Bool) -> Bool { phase == .live && writable }

    /// Ends the stream (shutdown, client gone, failure). Returns false if it had already ended.
    mutating func end() -> Bool {
        guard phase != .ended else { return false }
        phase = .ended
        held = []
        return true
    }

    /// The live rule for one event: skip what was written, catch up over a hole, else write.
    private mutating func apply(_ event: RenderedEvent) -> Delivery {
        let version = event.groupVersion
        if let last {
            if version <= last { return .ignore }
            if version > last + 1 {
                phase = .catchingUp
                held = [event]
                return .catchUp(after: last, through: version - 1)
            }
        }
        last = version
        if EventStreamRoute.ends(event.event, for: userID) {
            phase = .ended
            return .writeAndEnd(event)
        }
        return .write(event)
    }

    /// Applies the held events in order; stops at the first that needs a catch-up (it and the rest
    /// stay held) or ends the stream.
    private mutating func drainHeld() -> [Step] {
        let pending = held
        held = []
        var steps: [Step] = []
        for (index, event) in pending.enumerated() {
            switch apply(event) {
            case .ignore, .drop:
                continue
            case .write(let event):
                steps.append(.write(event))
            case .writeAndEnd(let event):
                steps.append(.write(event))
                steps.append(.end)
                return steps
            case .catchUp(let after, let through):
                held.append(contentsOf: pending[(index + 1)...])
                steps.append(.catchUp(after: after, through: through))
                return steps
            }
        }
        return steps
    }
}
