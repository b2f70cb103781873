import Foundation
import NATS
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A lean HTTP/1.1 client for load generation: keep-alive connections, one request at a time per
/// connection, no redirects, no TLS. (A general client would add per-request work the measurement
/// would then include.)
final class HTTPLoadConnection: @unchecked Sendable {
    struct Reply: Sendable {
        let status: Int
        let body: ByteBuffer
        let headers: HTTPHeaders
        var text: String { String(buffer: body) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]) ?? [:] }
    }

    let channel: Channel
    private let handler: ReplyHandler
    private let host: String

    private init(channel: Channel, handler: ReplyHandler, host: String) {
        self.channel = channel
        self.handler = handler
        self.host = host
    }

    static func connect(host: String, port: Int, group: EventLoopGroup) async throws -> HTTPLoadConnection {
        let handler = ReplyHandler()
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port).get()
        return HTTPLoadConnection(channel: channel, handler: handler, host: "\(host):\(port)")
    }

    func send(_ method: HTTPMethod, _ path: String, json body: String? = nil, headers extra: [(String, String)] = []) async throws -> Reply {
        var headers = HTTPHeaders([("Host", host), ("Connection", "keep-alive")])
        for (name, value) in extra { headers.add(name: name, value: value) }
        var buffer: ByteBuffer?
        if let body {
            buffer = channel.allocator.buffer(string: body)
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(buffer!.readableBytes))
        } else if method == .POST || method == .PATCH {
            headers.add(name: "Content-Length", value: "0")
        }
        let promise = channel.eventLoop.makePromise(of: Reply.self)
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        let channel = self.channel, handler = self.handler, body = buffer
        channel.eventLoop.execute {
            handler.pending = promise
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
        }
        return try await promise.futureResult.get()
    }

    func close() { channel.close(promise: nil) }

    final class ReplyHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        var pending: EventLoopPromise<Reply>?
        private var head: HTTPResponseHead?
        private var body: ByteBuffer?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let responseHead):
                head = responseHead
                body = nil
            case .body(var part):
                if body == nil { body = part } else { body!.writeBuffer(&part) }
            case .end:
                let reply = Reply(status: Int(head?.status.code ?? 0), body: body ?? ByteBuffer(), headers: head?.headers ?? [:])
                let promise = pending
                pending = nil
                promise?.succeed(reply)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            pending?.fail(ChannelError.ioOnClosedChannel)
            pending = nil
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            pending?.fail(error)
            pending = nil
            context.close(promise: nil)
        }
    }
}

/// Connections handed out one request at a time; a broken connection is replaced.
final class HTTPLoadPool: Sendable {
    private let host: String
    private let port: Int
    private let group: EventLoopGroup
    private let idle = Mutex<[HTTPLoadConnection]>([])
    private let slots: AsyncSemaphore

    init(host: String, port: Int, group: EventLoopGroup, connections: Int) {
        self.host = host
        self.port = port
        self.group = group
        slots = AsyncSemaphore(permits: connections)
    }

    func send(_ method: HTTPMethod, _ path: String, json body: String? = nil,
              headers: [(String, String)] = []) async throws -> HTTPLoadConnection.Reply {
        await slots.acquire()
        defer { slots.release() }
        let connection: HTTPLoadConnection
        if let reused = idle.withLock({ $0.popLast() }) {
            connection = reused
        } else {
            connection = try await HTTPLoadConnection.connect(host: host, port: port, group: group)
        }
        do {
            let reply = try await connection.send(method, path, json: body, headers: headers)
            idle.withLock { $0.append(connection) }
            return reply
        } catch {
            connection.close()
            throw error
        }
    }

    func closeAll() {
        for connection in idle.withLock({ pool in defer { pool.removeAll() }; return pool }) { connection.close() }
    }
}
