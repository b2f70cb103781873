import Contracts
import Foundation
import HTTPAPI
import Logging
import Metrics
import NATS
import Postgres
import ServiceLifecycle
import Sharding
import Synchronization

/// A user's notifications (DESIGN §9), as the read API lists them: newest first.
public struct NotificationItem: Encodable, Sendable, Equatable {
    public let id: Int64
    public let kind: String
    public let groupID: String
    public let todoID: String
    public let title: String
    public let createdAt: Date
    public let readAt: Date?
    public let late: Bool?

    enum CodingKeys: String, CodingKey {
        case id, kind, groupID = "group_id", todoID = "todo_id", title, createdAt = "created_at", readAt = "read_at", late
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(kind, forKey: .kind)
        try container.encode(groupID, forKey: .groupID)
        try container.encode(todoID, forKey: .todoID)
        try container.encode(title, forKey: .title)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(readAt, forKey: .readAt) // null while unread
        try container.encodeIfPresent(late, forKey: .late)
    }
}

public struct NotificationList: Encodable, Sendable {
    public let notifications: [NotificationItem]
    public let unread: Int
}

/// One of the caller's reminders in a group (their bell on a card).
public struct OwnReminder: Encodable, Sendable, Equatable {
    public let todoID: String
    public let remindAt: String
    public let timezone: String
    public let fireAt: Date

    enum CodingKeys: String, CodingKey {
        case todoID = "todo_id", remindAt = "remind_at", timezone, fireAt = "fire_at"
    }
}

public struct OwnReminderList: Encodable, Sendable {
    public let reminders: [OwnReminder]
}

extension ReadStore {
    /// The caller's pending reminders in the group, from the scheduler's due index (a reminder is
    /// listed once the scheduler has read its event; it stays until it fires or is cancelled).
    public func reminders(of user: String, in group: String) async throws -> [OwnReminder] {
        try await pool.withConnection { connection in
            try connection.query("""
                SELECT todo_id, remind_at, timezone, fire_at FROM scheduler_reminders
                WHERE group_id = $1 AND user_id = $2 AND fire_at IS NOT NULL AND remind_at IS NOT NULL AND timezone IS NOT NULL
                ORDER BY fire_at LIMIT 10000
                """, group, user).map { row in
                OwnReminder(todoID: try row.decode(String.self, "todo_id"), remindAt: try row.decode(String.self, "remind_at"),
                            timezone: try row.decode(String.self, "timezone"), fireAt: try row.decode(Date.self, "fire_at"))
            }
        }
    }
}

extension ReadStore {
    /// The user's notifications before `before` (an id), newest first, and their unread count.
    /// Only ever the caller's own: the user id comes from the token.
    public func notifications(of user: String, limit: Int, before: Int64?) async throws -> NotificationList {
        try await pool.withConnection { connection in
            let items = try connection.query("""
                SELECT notification_id, kind, group_id, todo_id, title, created_at, read_at, late FROM notifications
                WHERE user_id = $1 AND ($2::bigint IS NULL OR notification_id < $2)
                ORDER BY notification_id DESC LIMIT $3
                """, user, before, limit).map { row in
                NotificationItem(
                    id: try row.decode(Int64.self, "notification_id"), kind: try row.decode(String.self, "kind"),
                    groupID: try row.decode(String.self, "group_id"), todoID: try row.decode(String.self, "todo_id"),
                    title: try row.decode(String.self, "title"), createdAt: try row.decode(Date.self, "created_at"),
                    readAt: try row.decode(Date?.self, "read_at"), late: try row.decode(Bool.self, "late") ? true : nil)
            }
            return NotificationList(notifications: items, unread: try Self.unread(of: user, on: connection))
        }
    }

    public func unreadNotifications(of user: String) async throws -> Int {
        try await pool.withConnection { try Self.unread(of: user, on: $0) }
    }

    static func unread(of user: String, on connection: PostgresConnection) throws -> Int {
        try connection.query("SELECT count(*) AS n FROM notifications WHERE user_id = $1 AND read_at IS NULL", user)[0]
            .decode(Int.self, "n")
    }
}

/// The bell on every page (DESIGN §9): each user's streams in this process, and the one
/// subscription that tells them their notifications changed.
///
/// One core-NATS subscription on `app.notify.>` per process (notifications are rare next to todo
/// events); a signal for a user with streams here makes one count query, whose result is written to
/// each of their streams as a `datastar-patch-elements` of `#bell-count`. Like presence, only the
/// latest count matters: a stream that cannot take it now gets it when it can. A stream also gets
/// its user's count when it opens, so a reconnecting tab is never behind.
///
/// Streams opened without a group (pages other than a board) are heartbeaten here; a group's
/// streams get their heartbeats from `GroupFanout`.
public final class NotificationFeed: Service, Sendable {
    struct Registry {
        var byUser: [String: [ObjectIdentifier: LiveStream]] = [:]
        /// Streams with no group, which only this feed writes to.
        var bare: [ObjectIdentifier: LiveStream] = [:]
        /// Per user with streams here, the latest count read started: a count that comes back
        /// after a later one started is stale and dropped.
        var reads: [String: UInt64] = [:]
    }

    private let registry = Mutex(Registry())
    private let store: ReadStore
    private let connection: NATSConnection
    private let logger: Logger
    private let heartbeatInterval: Duration
    private let signals = Counter(label: "sse_notification_signals_total")
    private let failures = Counter(label: "sse_notification_count_failures_total")

    public init(store: ReadStore, connection: NATSConnection, heartbeat: Duration, logger: Logger) {
        self.store = store
        self.connection = connection
        heartbeatInterval = heartbeat
        self.logger = logger
    }

    /// Listens until graceful shutdown (run beside the server).
    public func run() async throws {
        let subscription = try await connection.subscribe(UserSubject.wildcard, bufferSize: 16_384)
        try await connection.ping() // the server has the subscription once it answers
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { tasks in
                tasks.addTask { await self.listen(subscription) }
                tasks.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.heartbeatInterval)
                        self.beat()
                    }
                }
                await tasks.next()
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            Task { await subscription.unsubscribe() }
        }
    }

    private func listen(_ subscription: NATSSubscription) async {
        for await message in subscription {
            guard let user = UserSubject.userID(of: message.subject), hasStreams(of: user) else { continue }
            signals.increment()
            Task { await self.refresh(user) }
        }
    }

    func hasStreams(of user: String) -> Bool {
        registry.withLock { $0.byUser[user]?.isEmpty == false }
    }

    /// Adds a stream of the user's (`bare`: one without a group) and sends the user's streams the
    /// current count (this one's first).
    func join(_ stream: LiveStream, bare: Bool) async {
        registry.withLock { registry in
            registry.byUser[stream.userID, default: [:]][ObjectIdentifier(stream)] = stream
            if bare { registry.bare[ObjectIdentifier(stream)] = stream }
        }
        await refresh(stream.userID)
    }

    func leave(_ stream: LiveStream) {
        registry.withLock { registry in
            registry.byUser[stream.userID]?[ObjectIdentifier(stream)] = nil
            if registry.byUser[stream.userID]?.isEmpty == true {
                registry.byUser[stream.userID] = nil
                registry.reads[stream.userID] = nil
            }
            registry.bare[ObjectIdentifier(stream)] = nil
        }
    }

    /// Reads the user's count and writes it to each of their streams here, unless a read started
    /// later has already been written (reads may finish out of order).
    func refresh(_ user: String) async {
        let read: UInt64 = registry.withLock { registry in
            let next = (registry.reads[user] ?? 0) &+ 1
            registry.reads[user] = next
            return next
        }
        guard let count = await count(of: user) else { return }
        let bytes = Self.bell(unread: count)
        let streams: [LiveStream] = registry.withLock { registry in
            // A later read is under way or done: its count is the newer one.
            guard registry.reads[user] == read else { return [] }
            return Array((registry.byUser[user] ?? [:]).values)
        }
        for stream in streams {
            stream.eventLoop.execute { stream.notice(bytes, kind: .bell) }
        }
    }

    private func count(of user: String) async -> Int? {
        do {
            return try await store.unreadNotifications(of: user)
        } catch {
            failures.increment()
            logger.warning("reading a user's unread notifications failed", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func beat() {
        for stream in registry.withLock({ Array($0.bare.values) }) {
            stream.eventLoop.execute { stream.heartbeat(EventStreamRoute.ping) }
        }
    }

    /// Ends the streams without a group (graceful shutdown; the group's end with their fan-out).
    func drain() async -> Int {
        let streams = registry.withLock { Array($0.bare.values) }
        for stream in streams {
            try? await stream.eventLoop.submit {
                stream.shutdown(retryLine: StreamBytes(DatastarSSE.retry(milliseconds: Int.random(in: 1000...5000))))
            }.get()
        }
        return streams.count
    }

    /// The bell's count as an element patch (`#bell-count`; hidden at 0 by the style sheet).
    static func bell(unread: Int) -> StreamBytes {
        let shown = unread > 99 ? "99+" : String(unread)
        let label = unread == 1 ? "1 unread notification" : "\(unread) unread notifications"
        return StreamBytes(DatastarSSE.patchElements(
            #"<span id="bell-count" class="bell-count" data-unread="\#(unread)" aria-label="\#(label)">\#(shown)</span>"#))
    }
}
