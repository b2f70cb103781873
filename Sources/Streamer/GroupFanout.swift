import Contracts
import Foundation
import Logging
import Metrics
import NATS
import Sharding
import Synchronization

/// One live stream's mailbox: a bounded queue of rendered events. When it is full the client is
/// too slow: the mailbox closes, the stream ends, and the client reconnects with Last-Event-ID and
/// catches up from JetStream — the others never wait for it.
public final class StreamClient: Sendable {
    public enum Item: Sendable {
        case event(RenderedEvent)
        case heartbeat
        /// The server is shutting down: send this reconnection delay and end the stream.
        case shutdown(retryMilliseconds: Int)
    }

    public let userID: String
    public let items: AsyncStream<Item>
    private let continuation: AsyncStream<Item>.Continuation
    private let overflowed = Atomic<Bool>(false)
    /// Cuts the connection: a write to a client that does not read would otherwise wait forever.
    private let disconnect: @Sendable () -> Void

    public init(userID: String, capacity: Int, disconnect: @escaping @Sendable () -> Void = {}) {
        self.userID = userID
        self.disconnect = disconnect
        (items, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(capacity))
    }

    /// False when the client was too slow and has been cut off.
    @discardableResult
    public func offer(_ item: Item) -> Bool {
        switch continuation.yield(item) {
        case .enqueued: return true
        case .dropped:
            if !overflowed.exchange(true, ordering: .relaxed) {
                continuation.finish()
                disconnect()
            }
            return false
        case .terminated: return false
        @unknown default: return false
        }
    }

    public var wasTooSlow: Bool { overflowed.load(ordering: .relaxed) }

    public func close() { continuation.finish() }
}

/// One NATS subscription per group per process, shared by every local client of that group. Each
/// event is decoded and rendered once, then offered to every client's mailbox.
public actor GroupFanout {
    final class Channel: Sendable {
        let clients = Mutex<[ObjectIdentifier: StreamClient]>([:])
        let ready: Task<NATSSubscription, any Error>

        init(ready: Task<NATSSubscription, any Error>) {
            self.ready = ready
        }
    }

    private let connection: NATSConnection
    private let logger: Logger
    private var channels: [String: Channel] = [:]
    private let subscribedGroups = Gauge(label: "sse_subscribed_groups")
    private let fannedOut = Counter(label: "sse_events_fanned_out_total")
    private let slowDropped = Counter(label: "sse_slow_clients_dropped_total")
    private let undecodable = Counter(label: "sse_undecodable_events_total")

    private let heartbeatInterval: Duration
    private var heartbeats: Task<Void, Never>?

    public init(connection: NATSConnection, heartbeat: Duration = .seconds(15), logger: Logger) {
        self.connection = connection
        heartbeatInterval = heartbeat
        self.logger = logger
    }

    /// Adds the client to its group's channel; returns once the group's subscription is registered
    /// with the server, so nothing published afterwards can be missed.
    public func join(_ group: GroupID, _ client: StreamClient) async throws {
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
            let fannedOut = self.fannedOut, slowDropped = self.slowDropped, undecodable = self.undecodable, logger = self.logger
            Task {
                guard let subscription = try? await channel.ready.value else { return }
                for await message in subscription {
                    let json = String(decoding: message.payload, as: UTF8.self)
                    guard let rendered = try? RenderedEvent(json: json) else {
                        undecodable.increment()
                        logger.warning("undecodable event", metadata: ["subject": "\(message.subject)"])
                        continue
                    }
                    let clients = channel.clients.withLock { Array($0.values) }
                    for client in clients where !client.offer(.event(rendered)) {
                        if client.wasTooSlow { slowDropped.increment() }
                    }
                    fannedOut.increment(by: clients.count)
                }
            }
        }
        channel.clients.withLock { $0[ObjectIdentifier(client)] = client }
        do {
            _ = try await channel.ready.value
        } catch {
            await leave(group, client)
            throw error
        }
    }

    /// Removes the client; the last one out unsubscribes the group.
    public func leave(_ group: GroupID, _ client: StreamClient) async {
        guard let channel = channels[group.rawValue] else { return }
        let empty = channel.clients.withLock { clients in
            clients[ObjectIdentifier(client)] = nil
            return clients.isEmpty
        }
        guard empty else { return }
        channels[group.rawValue] = nil
        subscribedGroups.record(channels.count)
        if let subscription = try? await channel.ready.value { await subscription.unsubscribe() }
    }

    public var groupCount: Int { channels.count }

    /// Ends every stream of the process (graceful shutdown): each client is told to reconnect
    /// after a random 1–5 s, so a fleet of browsers spreads over the remaining replicas rather
    /// than arriving at once. Returns how many streams were told.
    @discardableResult
    public func drain() -> Int {
        var count = 0
        for channel in channels.values {
            for client in channel.clients.withLock({ Array($0.values) }) {
                client.offer(.shutdown(retryMilliseconds: Int.random(in: 1000...5000)))
                count += 1
            }
        }
        return count
    }

    /// Offers every client a heartbeat (written as a comment, so a vanished client is noticed at
    /// the write and proxies keep the connection open).
    private func beat() {
        for channel in channels.values {
            for client in channel.clients.withLock({ Array($0.values) }) { client.offer(.heartbeat) }
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
