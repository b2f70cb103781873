import CNATS
import Foundation
import Synchronization

/// A connection to a NATS server through libnats, with JetStream.
///
/// The connection reconnects on its own after a lost server (forever by default, buffering
/// publishes meanwhile); the initial connect fails at once with `.noServer` when nothing listens.
public final class NATSConnection: @unchecked Sendable {
    public struct Options: Sendable {
        public var url: String
        /// Shown in the server's connection list (`/connz`).
        public var name: String
        public var connectTimeout: Duration = .seconds(2)
        public var reconnectWait: Duration = .milliseconds(250)
        /// -1 reconnects forever.
        public var maxReconnects: Int = -1
        /// Bytes buffered while reconnecting; publishes past it fail instead of blocking.
        public var reconnectBufferBytes: Int = 16 * 1024 * 1024
        /// How often the client pings its server, and how many pings may go unanswered before the
        /// connection counts as lost and the client moves to another server. A server that is cut
        /// off (no reset, every packet dropped) is left after 6–8 s instead of libnats' 4 minutes.
        public var pingInterval: Duration = .seconds(2)
        public var maxPingsOut: Int = 3
        /// How long a JetStream publish waits for its acknowledgement before it is reported failed.
        public var publishAckTimeout: Duration = .seconds(5)
        /// JetStream publishes that may wait for acknowledgement at once; more wait (back-pressure).
        public var maxPendingPublishes: Int = 4096
        /// Timeout of JetStream API requests (stream and consumer management, get message).
        public var apiTimeout: Duration = .seconds(5)
        /// Threads for blocking libnats calls (fetch, replay, API requests, publish submission).
        public var blockingThreads: Int = 4
        /// A PEM file of the certificate authorities to trust: the connection then requires TLS
        /// (`tls://` URLs require it too, with the system's authorities).
        public var caFile: String?

        public init(url: String, name: String = "todo-pipeline") {
            self.url = url
            self.name = name
        }
    }

    let connection: OpaquePointer
    let jetStreamContext: OpaquePointer
    let executor: BlockingExecutor
    /// One thread that hands JetStream publishes to libnats, so they keep their order.
    let publisher = BlockingExecutor(threads: 1)
    let publishRegistry: PublishRegistry
    let publishPermits: AsyncSemaphore
    public let options: Options
    private let closed = Mutex(false)

    private init(connection: OpaquePointer, jetStream: OpaquePointer, executor: BlockingExecutor,
                 registry: PublishRegistry, permits: AsyncSemaphore, options: Options) {
        self.connection = connection
        self.jetStreamContext = jetStream
        self.executor = executor
        self.publishRegistry = registry
        self.publishPermits = permits
        self.options = options
    }

    /// Connects, failing with `NATSError.Kind.noServer` and the URL when no server answers.
    public static func connect(_ options: Options) async throws -> NATSConnection {
        let executor = BlockingExecutor(threads: options.blockingThreads)
        let permits = AsyncSemaphore(permits: options.maxPendingPublishes)
        let registry = PublishRegistry(permits: permits)
        do {
            let (connection, jetStream) = try await executor.run {
                try Self.open(options, registry: registry)
            }
            return NATSConnection(connection: connection.pointer, jetStream: jetStream.pointer, executor: executor,
                                  registry: registry, permits: permits, options: options)
        } catch {
            await executor.shutdown()
            throw error
        }
    }

    public static func connect(url: String, name: String = "todo-pipeline") async throws -> NATSConnection {
        try await connect(Options(url: url, name: name))
    }

    private static func open(_ options: Options, registry: PublishRegistry) throws -> (SendablePointer, SendablePointer) {
        var natsOptions: OpaquePointer?
        try NATSError.check(natsOptions_Create(&natsOptions), "create NATS options")
        defer { natsOptions_Destroy(natsOptions) }
        // Several servers (a cluster) are a list of their own: natsOptions_SetURL takes one URL.
        let servers = options.url.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if servers.count > 1 {
            var pointers = servers.map { UnsafePointer(strdup($0)) }
            defer { for pointer in pointers { free(UnsafeMutablePointer(mutating: pointer)) } }
            try NATSError.check(natsOptions_SetServers(natsOptions, &pointers, Int32(pointers.count)), "set NATS servers")
        } else {
            try NATSError.check(natsOptions_SetURL(natsOptions, options.url), "set NATS URL")
        }
        try NATSError.check(natsOptions_SetName(natsOptions, options.name), "set connection name")
        if let prefix = inboxPrefix(for: options.url) {
            try NATSError.check(natsOptions_SetCustomInboxPrefix(natsOptions, prefix), "set inbox prefix")
        }
        try NATSError.check(natsOptions_SetTimeout(natsOptions, options.connectTimeout.milliseconds), "set connect timeout")
        try NATSError.check(natsOptions_SetAllowReconnect(natsOptions, true), "allow reconnect")
        try NATSError.check(natsOptions_SetMaxReconnect(natsOptions, Int32(options.maxReconnects)), "set max reconnects")
        try NATSError.check(natsOptions_SetReconnectWait(natsOptions, options.reconnectWait.milliseconds), "set reconnect wait")
        try NATSError.check(natsOptions_SetReconnectBufSize(natsOptions, Int32(options.reconnectBufferBytes)), "set reconnect buffer")
        try NATSError.check(natsOptions_SetPingInterval(natsOptions, options.pingInterval.milliseconds), "set ping interval")
        try NATSError.check(natsOptions_SetMaxPingsOut(natsOptions, Int32(options.maxPingsOut)), "set max pings out")

        // Callbacks of all subscriptions share a small pool of threads instead of one thread each,
        // so a streamer with thousands of group subscriptions does not start thousands of threads.
        try NATSError.check(natsOptions_UseGlobalMessageDelivery(natsOptions, true), "use global message delivery")
        if let caFile = options.caFile {
            try NATSError.check(natsOptions_SetSecure(natsOptions, true), "require TLS")
            try NATSError.check(natsOptions_LoadCATrustedCertificates(natsOptions, caFile), "load the CA certificates in \(caFile)")
        }

        var connection: OpaquePointer?
        let status = natsConnection_Connect(&connection, natsOptions)
        guard status == NATS_OK, let connection else {
            var error = NATSError(status: status, operation: "connect to \(redacted(options.url))")
            if error.kind == .noServer {
                error = NATSError(kind: .noServer, operation: "connect to \(redacted(options.url))",
                                  message: "no NATS server is reachable there (is nats-server running with JetStream?)",
                                  status: status.rawValue)
            }
            throw error
        }

        var jsOptions = jsOptions()
        jsOptions_Init(&jsOptions)
        jsOptions.Wait = options.apiTimeout.milliseconds
        // Our own semaphore bounds pending publishes before they reach libnats, so its stall
        // (which blocks the calling thread) never triggers.
        jsOptions.PublishAsync.MaxPending = Int64(options.maxPendingPublishes) * 2
        jsOptions.PublishAsync.AckHandler = onPublishAcknowledged
        jsOptions.PublishAsync.AckHandlerClosure = Unmanaged.passRetained(registry).toOpaque()
        var jetStream: OpaquePointer?
        let jsStatus = natsConnection_JetStream(&jetStream, connection, &jsOptions)
        guard jsStatus == NATS_OK, let jetStream else {
            Unmanaged.passUnretained(registry).release()
            natsConnection_Destroy(connection)
            throw NATSError(status: jsStatus, operation: "create JetStream context")
        }
        return (SendablePointer(connection), SendablePointer(jetStream))
    }

    /// The JetStream API of this connection.
    public var jetStream: JetStream { JetStream(connection: self) }

    /// JetStream publishes sent and still waiting for their acknowledgement (for metrics).
    public var publishesAwaitingAcknowledgement: Int { publishRegistry.pendingCount }

    /// How many more publishes may be sent before callers wait (back-pressure headroom).
    public var publishCapacityAvailable: Int { publishPermits.availablePermits }

    /// Whether the connection is currently connected (not reconnecting or closed).
    public var isConnected: Bool {
        natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED
    }

    /// Round trip to the server: proves it is reachable right now.
    public func ping(timeout: Duration = .seconds(1)) async throws {
        try await executor.run { [self] in
            try NATSError.check(natsConnection_FlushTimeout(connection, timeout.milliseconds), "ping NATS server")
        }
    }

    /// Publishes a core NATS message (no JetStream acknowledgement).
    public func publish(_ subject: String, _ payload: Data, headers: NATSHeaders = NATSHeaders()) async throws {
        try await executor.run { [self] in
            let message = try makeMessage(subject: subject, payload: payload, headers: headers)
            defer { natsMsg_Destroy(message) }
            try NATSError.check(natsConnection_PublishMsg(connection, message), "publish to \(subject)")
        }
    }

    /// Subscribes to live core messages on `subject` (wildcards allowed), without history.
    public func subscribe(_ subject: String, queue: String? = nil, bufferSize: Int = 65_536) async throws -> NATSSubscription {
        try await executor.run { [self] in
            try NATSSubscription(connection: self, subject: subject, queue: queue, bufferSize: bufferSize)
        }
    }

    /// Stops new work, lets subscriptions deliver what they have, flushes pending publishes, then
    /// closes. Publishes still waiting for an acknowledgement afterwards are failed with
    /// `.publishAbandoned`.
    public func drain(timeout: Duration = .seconds(5)) async {
        guard markClosed() else { return }
        let deadline = ContinuousClock.now + timeout
        _ = try? await executor.run { [self] in
            if natsConnection_DrainTimeout(connection, timeout.milliseconds) == NATS_OK {
                while !natsConnection_IsClosed(connection) && ContinuousClock.now < deadline {
                    nats_Sleep(10)
                }
            }
            natsConnection_Close(connection)
        }
        publishRegistry.failAll(operation: "drain")
        await publisher.shutdown()
        await executor.shutdown()
    }

    /// Closes at once.
    public func close() async {
        guard markClosed() else { return }
        _ = try? await executor.run { [self] in natsConnection_Close(connection) }
        publishRegistry.failAll(operation: "close")
        await publisher.shutdown()
        await executor.shutdown()
    }

    private func markClosed() -> Bool {
        closed.withLock { closed in
            if closed { return false }
            closed = true
            return true
        }
    }

    deinit {
        natsConnection_Close(connection)
        jsCtx_Destroy(jetStreamContext)
        natsConnection_Destroy(connection)
        // The ack handler's closure; no callback can run once the connection is destroyed.
        Unmanaged.passUnretained(publishRegistry).release()
    }

    func makeMessage(subject: String, payload: Data, headers: NATSHeaders) throws(NATSError) -> OpaquePointer {
        var message: OpaquePointer?
        let status = payload.withUnsafeBytes { bytes in
            natsMsg_Create(&message, subject, nil, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }
        try NATSError.check(status, "create message for \(subject)")
        guard let message else { throw NATSError(kind: .other, operation: "create message", message: "libnats returned no message") }
        do {
            try headers.write(to: message)
        } catch {
            natsMsg_Destroy(message)
            throw error
        }
        return message
    }
}

/// A C pointer handed between threads by code that owns it exclusively.
struct SendablePointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

extension Duration {
    /// Whole milliseconds, at least 1 for any positive duration.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let millis = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return millis == 0 && self > .zero ? 1 : millis
    }

    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    init(nanoseconds: Int64) {
        self = .nanoseconds(nanoseconds)
    }
}

/// `nats://user:secret@host:4222` → `nats://user:***@host:4222`, for error messages and logs.
/// The URL (or comma-separated URLs) with every password replaced by `***`.
func redacted(_ url: String) -> String {
    url.split(separator: ",", omittingEmptySubsequences: false).map { server in
        guard let at = server.firstIndex(of: "@"), let scheme = server.range(of: "://"), scheme.upperBound < at else { return String(server) }
        let credentials = server[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return String(server) }
        return String(server[..<colon]) + ":***" + String(server[at...])
    }.joined(separator: ",")
}

/// Replies to a connection come to `_INBOX_<user>.…` when its URL names a user, so that the bus
/// permissions can let each service subscribe to its own replies only (`_INBOX.…` otherwise).
func inboxPrefix(for url: String) -> String? {
    guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return nil }
    let credentials = url[scheme.upperBound..<at]
    let user = (credentials.split(separator: ":", maxSplits: 1).first.map(String.init) ?? "").removingPercentEncoding ?? ""
    guard !user.isEmpty, user.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F })
    else { return nil }
    return "_INBOX_" + user
}

extension NATSConnection {
    /// A core request/reply round trip.
    public func request(_ subject: String, _ payload: Data, timeout: Duration = .seconds(5)) async throws -> Data {
        try await executor.run { [self] in
            var reply: OpaquePointer?
            let status = payload.withUnsafeBytes { bytes in
                natsConnection_Request(&reply, connection, subject, bytes.baseAddress, Int32(bytes.count), timeout.milliseconds)
            }
            try NATSError.check(status, "request \(subject)")
            guard let reply else { return Data() }
            defer { natsMsg_Destroy(reply) }
            return payloadData(of: reply)
        }
    }
}
