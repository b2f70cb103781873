import DequeModule
import Foundation
import NIOPosix
import ThreadPoolSupport
import Synchronization

/// A bounded pool of libpq connections whose blocking work runs on the pool's own threads.
///
/// - Connections open lazily, up to `maxConnections`; callers beyond that wait in order.
/// - Before a connection is handed out it is checked without a round trip (`isUsable`); one that
///   the server dropped (restart, idle timeout) is replaced, so the pool recovers on its own after
///   Postgres restarts. A statement that fails because the connection broke is reported to the
///   caller (it may or may not have run) and the connection is discarded.
public final class PostgresPool: Sendable {
    public struct Configuration: Sendable {
        /// A libpq connection string or URL (`postgres://user:pass@host:port/db?sslmode=disable`).
        public var url: String
        public var maxConnections: Int

        public init(url: String, maxConnections: Int = 10) {
            self.url = url
            self.maxConnections = max(1, maxConnections)
        }
    }

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: Deque<CheckedContinuation<Lease, Error>> = []
        var closed = false
    }

    /// What a waiter receives: a connection, or permission to open one.
    private enum Lease: @unchecked Sendable {
        case connection(PostgresConnection)
        case openNew
    }

    public let configuration: Configuration
    private let state = Mutex(State())
    private let threads: NIOThreadPool

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        threads = NIOThreadPool(numberOfThreads: configuration.maxConnections)
        threads.start()
    }

    public convenience init(url: String, maxConnections: Int = 10) {
        self.init(Configuration(url: url, maxConnections: maxConnections))
    }

    /// Runs `body` with a connection on a pool thread; `body` may call the connection's blocking
    /// methods freely. The connection returns to the pool afterwards.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let lease = try await acquire()
        let url = configuration.url
        do {
            let (value, connection) = try await threads.runToCompletion { () throws -> (T, SendableConnection) in
                let connection: PostgresConnection
                switch lease {
                case .connection(let existing) where existing.isUsable:
                    connection = existing
                case .connection(let stale):
                    stale.close()
                    connection = try PostgresConnection(url: url)
                case .openNew:
                    connection = try PostgresConnection(url: url)
                }
                do {
                    let value = try body(connection)
                    return (value, SendableConnection(connection))
                } catch {
                    throw LeasedFailure(error: error, connection: SendableConnection(connection))
                }
            }
            release(connection.connection)
            return value
        } catch let failure as LeasedFailure {
            release(failure.connection.connection)
            throw failure.error
        } catch {
            // Could not connect, or the pool threads are gone: close what we leased, give the slot back.
            if case .connection(let leased) = lease { leased.close() }
            release(nil)
            throw error
        }
    }

    /// Runs `body` in a transaction on one connection: COMMIT when it returns, ROLLBACK when it throws.
    public func withTransaction<T: Sendable>(
        isolation: PostgresConnection.IsolationLevel = .readCommitted,
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        try await withConnection { connection in
            try connection.transaction(isolation: isolation, body)
        }
    }

    /// One parameterized statement.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> PostgresRows {
        try await withConnection { try $0.query(sql, parameters) }
    }

    @discardableResult
    public func query(_ sql: String, _ first: any PostgresEncodable, _ rest: any PostgresEncodable...) async throws -> PostgresRows {
        let parameters = [first] + rest
        return try await withConnection { try $0.query(sql, parameters) }
    }

    /// Bulk insert through COPY.
    @discardableResult
    public func copy(into table: String, columns: [String], rows: [[any PostgresEncodable]]) async throws -> Int {
        let rows = SendableRows(rows: rows)
        return try await withConnection { try $0.copy(into: table, columns: columns, rows: rows.rows) }
    }

    /// True when a connection can be had and answers `SELECT 1`.
    public func isHealthy() async -> Bool {
        (try? await query("SELECT 1")) != nil
    }

    /// Open connections (busy and idle).
    public var openConnections: Int { state.withLock { $0.open } }

    /// Closes idle connections, fails waiters, and stops the threads. Busy connections close as
    /// they come back.
    public func shutdown() async {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle.removeAll()
                state.waiters.removeAll()
            }
            return (state.idle, Array(state.waiters))
        }
        for waiter in waiters {
            waiter.resume(throwing: PostgresError(kind: .poolClosed, message: "the pool is shut down", context: "acquire"))
        }
        for connection in idle { connection.close() }
        try? await threads.shutdownGracefully()
    }

    private func acquire() async throws -> Lease {
        enum Immediate {
            case lease(Lease)
            case wait
            case closed
        }
        let immediate = state.withLock { state -> Immediate in
            if state.closed { return .closed }
            if let connection = state.idle.popLast() { return .lease(.connection(connection)) }
            if state.open < configuration.maxConnections {
                state.open += 1
                return .lease(.openNew)
            }
            return .wait
        }
        switch immediate {
        case .lease(let lease): return lease
        case .closed: throw PostgresError(kind: .poolClosed, message: "the pool is shut down", context: "acquire")
        case .wait:
            return try await withCheckedThrowingContinuation { continuation in
                let outcome = state.withLock { state -> Immediate in
                    if state.closed { return .closed }
                    if let connection = state.idle.popLast() { return .lease(.connection(connection)) }
                    if state.open < configuration.maxConnections {
                        state.open += 1
                        return .lease(.openNew)
                    }
                    state.waiters.append(continuation)
                    return .wait
                }
                switch outcome {
                case .lease(let lease): continuation.resume(returning: lease)
                case .closed:
                    continuation.resume(throwing: PostgresError(kind: .poolClosed, message: "the pool is shut down", context: "acquire"))
                case .wait: break
                }
            }
        }
    }

    /// Returns a connection (nil: the slot of one that could not be opened). A broken connection
    /// is closed, and its slot goes to the next waiter to open a fresh one.
    private func release(_ connection: PostgresConnection?) {
        let keep = connection.map { $0.isUsable } ?? false
        if let connection, !keep { connection.close() }
        let handoff = state.withLock { state -> (CheckedContinuation<Lease, Error>, Lease)? in
            if state.closed {
                state.open -= 1
                if keep { connection?.close() }
                return nil
            }
            if let waiter = state.waiters.popFirst() {
                return (waiter, keep ? .connection(connection!) : .openNew)
            }
            if keep, let connection {
                connection.lastUsed = .now
                state.idle.append(connection)
            } else {
                state.open -= 1
            }
            return nil
        }
        if let (waiter, lease) = handoff { waiter.resume(returning: lease) }
    }
}

private struct SendableConnection: @unchecked Sendable {
    let connection: PostgresConnection
    init(_ connection: PostgresConnection) { self.connection = connection }
}

private struct LeasedFailure: Error, @unchecked Sendable {
    let error: Error
    let connection: SendableConnection
}

private struct SendableRows: @unchecked Sendable {
    let rows: [[any PostgresEncodable]]
}
