import Contracts
import Foundation
import Logging
import Metrics
import NATS
import NIOCore
import Sharding
import Synchronization

/// One NATS subscription per group per process, shared by every local stream of that group. Each
/// event is decoded and rendered (and encoded to bytes) once, then written to every stream by its
/// connection's event loop.
public actor GroupFanout {
    /// A group's local streams, kept per event loop so that one event costs one task per loop,
    /// not one per stream: each loop then writes to its own connections. `slot` is a stream's
    /// index in its list (swap-remove on leave).
    struct Streams {
        var lists: [(loop: any EventLoop, streams: ContiguousArray<LiveStream>)] = []

        var count: Int { lists.reduce(0) { $0 + $1.streams.count } }

        mutating func add(_ stream: LiveStream) {
            let index = lists.firstIndex { $0.loop === stream.eventLoop } ?? {
                lists.append((stream.eventLoop, []))
                return lists.count - 1
            }()
            stream.slot = lists[index].streams.count
            lists[index].streams.append(stream)
        }

        /// Returns whether no stream is left.
        mutating func remove(_ stream: LiveStream) -> Bool {
            if let index = lists.firstIndex(where: { $0.loop === stream.eventLoop }),
               lists[index].streams.indices.contains(stream.slot), lists[index].streams[stream.slot] === stream {
                let slot = stream.slot
                lists[index].streams.swapAt(slot, lists[index].streams.count - 1)
                lists[index].streams[slot].slot = slot
                lists[index].streams.removeLast()
                stream.slot = -1
            }
            return lists.allSatisfy { $0.streams.isEmpty }
        }
    }

    final class Channel: Sendable {
        let streams = Mutex(Streams())
        let ready: Task<NATSSubscription, any Error>

        init(ready: Task<NATSSubscription, any Error>) {
            self.ready = ready
        }

        /// Runs `body` for every stream, on each stream's event loop (one task per loop); returns
        /// how many streams there were.
        @discardableResult
        func forEach(_ body: @escaping @Sendable (LiveStream) -> Void) -> Int {
            // `execute`, not `submit`: this runs for every event, and nobody waits for it.
            var count = 0
            for (loop, streams) in streams.withLock({ $0.lists }) where !streams.isEmpty {
                count += streams.count
                loop.execute { for stream in streams { body(stream) } }
            }
            return count
        }

        /// The same, returning once every loop has run `body` for its streams.
        func forEachAndWait(_ body: @escaping @Sendable (LiveStream) -> Void) async -> Int {
            var count = 0
            var done: [EventLoopFuture<Void>] = []
            for (loop, streams) in streams.withLock({ $0.lists }) where !streams.isEmpty {
                count += streams.count
                done.append(loop.submit { for stream in streams { body(stream) } })
            }
            for future in done { try? await future.get() }
            return count
        }
    }

    private let connection: NATSConnection
    private let logger: Logger
    private var channels: [String: Channel] = [:]
    private let subscribedGroups = Gauge(label: "sse_subscribed_groups")
    private let fannedOut = Counter(label: "sse_events_fanned_out_total")
    private let undecodable = Counter(label: "sse_undecodable_events_total")

    private let heartbeatInterval: Duration
    private var heartbeats: Task<Void, Never>?

    public init(connection: NATSConnection, heartbeat: Duration = .seconds(15), logger: Logger) {
        self.connection = connection
        heartbeatInterval = heartbeat
        self.logger = logger
    }

    /// Adds the stream to its group's channel; returns once the group's subscription is registered
    /// with the server, so nothing published afterwards can be missed.
    func join(_ group: GroupID, _ stream: LiveStream) async throws {
        startHeartbeats()
        let channel: Channel
        if let existing = channels[group.rawValue] {
            channel = existing
        } else {
            let subject = GroupSubject.event(group).subject
            let connection = self.connection
            channel = Channel(ready: Task {
                let subscription = try await connection.subscribe(subject, bufferSize: 16_384)
                try await connection.ping() // the server has the subscription once it answers
                return subscription
            })
            channels[group.rawValue] = channel
            subscribedGroups.record(channels.count)
            let fannedOut = self.fannedOut, undecodable = self.undecodable, logger = self.logger
            Task {
                guard let subscription = try? await channel.ready.value else { return }
                for await message in subscription {
                    guard let events = try? RenderedEvent.all(in: message.payload) else {
                        undecodable.increment()
                        logger.warning("undecodable event", metadata: ["subject": "\(message.subject)"])
                        continue
                    }
                    // A run's events go to each stream together: one hop per event loop and one
                    // flush per stream for the whole run.
                    fannedOut.increment(by: events.count * channel.forEach { $0.deliver(events) })
                }
            }
        }
        channel.streams.withLock { $0.add(stream) }
        do {
            _ = try await channel.ready.value
        } catch {
            await leave(group, stream)
            throw error
        }
    }

    /// Removes the stream; the last one out unsubscribes the group.
    func leave(_ group: GroupID, _ stream: LiveStream) async {
        guard let channel = channels[group.rawValue] else { return }
        guard channel.streams.withLock({ $0.remove(stream) }) else { return }
        channels[group.rawValue] = nil
        subscribedGroups.record(channels.count)
        if let subscription = try? await channel.ready.value { await subscription.unsubscribe() }
    }

    public var groupCount: Int { channels.count }

    /// Writes `bytes` to every live stream of the group in this process (presence signals).
    func signal(_ group: GroupID, _ bytes: StreamBytes) {
        channels[group.rawValue]?.forEach { $0.notice(bytes) }
    }

    /// Ends every stream of the process (graceful shutdown): each client is told to reconnect
    /// after a random 1–5 s, so a fleet of browsers spreads over the remaining replicas rather
    /// than arriving at once. Returns how many streams were told, once every hint is written (so
    /// the HTTP server's shutdown, which closes idle connections, comes after them).
    @discardableResult
    public func drain() async -> Int {
        var count = 0
        for channel in channels.values {
            count += await channel.forEachAndWait { stream in
                stream.shutdown(retryLine: StreamBytes(DatastarSSE.retry(milliseconds: Int.random(in: 1000...5000))))
            }
        }
        return count
    }

    /// Writes a heartbeat comment to every stream (so a vanished client is noticed at the write
    /// and proxies keep the connection open).
    private func beat() {
        for channel in channels.values {
            channel.forEach { $0.heartbeat(EventStreamRoute.ping) }
        }
    }

    /// One ticker for every stream of the process rather than a sleeping task per stream (a task
    /// per idle stream costs memory); started with the first stream, ends with the fan-out.
    private func startHeartbeats() {
        guard heartbeats == nil else { return }
        let interval = heartbeatInterval
        heartbeats = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self else { return }
                await self.beat()
            }
        }
    }

    deinit { heartbeats?.cancel() }
}
