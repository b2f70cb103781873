import HTTPAPI
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Opens a stream for a `GET /events` request: authentication, membership, admission, joining the
/// group's fan-out. Throws `APIError` for a request it refuses.
protocol SSEStreamOpener: Sendable {
    func open(_ request: HTTPRequest, on connection: SSEConnectionHandler) async throws -> LiveStream
    /// Headers every response to `request` carries (CORS), success or error.
    func responseHeaders(for request: HTTPRequest) -> HTTPFields
}

/// Serves `GET /events` below Hummingbird's router, in the connection's channel pipeline.
///
/// Why: a stream lives for hours, and everything on the async path of a Hummingbird request
/// stays allocated for as long as its connection task does — the task allocator keeps the slabs
/// of the deepest call stack it ever had (middleware chain, router, route: ~14 KB per stream,
/// measured with heaptrack). Here a stream request costs a short task (authenticate, check
/// membership, join the fan-out) that ends when the response head goes out; the stream itself is
/// a `LiveStream` written to by its event loop. Hummingbird's connection task only waits for the
/// next request, as on any idle keep-alive connection.
///
/// Sits after the HTTP/1 codec (`HTTPRequestPart` in, `HTTPResponsePart` out) and before
/// Hummingbird's request handling. Every other request passes through untouched. HTTP/1.1
/// pipelining stays correct: a stream request waits until earlier responses are complete, and
/// requests arriving behind a stream are held (at most `maxHeldParts` parts) and passed on when it
/// ends. Runs on its channel's event loop only (hence `@unchecked Sendable`: the opening task holds
/// a reference and comes back to the loop).
final class SSEConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let path = "/events"
    static let maxHeldParts = 64

    private enum State {
        case passing
        /// The stream request's head arrived; waiting for its end.
        case receiving(HTTPRequest)
        /// Complete; waiting for earlier responses on the connection to finish.
        case queued(HTTPRequest)
        /// Authenticating and joining, off the event loop.
        case opening(HTTPRequest)
        case streaming(LiveStream, closeAfter: Bool)
    }

    private let opener: any SSEStreamOpener
    private var state = State.passing
    private var context: ChannelHandlerContext?
    private var channel: (any Channel)?
    /// The HTTP/1 response encoder's context, when the pipeline has one (Hummingbird's does): a
    /// stream's body bytes are written from there, already chunk-framed, which skips two handlers,
    /// two boxings and a chunk-header allocation per write. The response head and end still go
    /// through the encoder, which frames the response as chunked (HTTP/1.1, no content length).
    private var encoder: ChannelHandlerContext?
    /// Requests passed to Hummingbird whose responses have not ended.
    private var unfinishedResponses = 0
    private var heldParts: [HTTPRequestPart] = []
    private(set) var eventLoop: (any EventLoop)!

    /// The peer's address (for per-IP limits).
    var remoteAddress: SocketAddress? { channel?.remoteAddress }

    init(opener: any SSEStreamOpener) {
        self.opener = opener
    }

    static func isStreamRequest(_ request: HTTPRequest) -> Bool {
        guard request.method == .get, let path = request.path, path.hasPrefix(Self.path) else { return false }
        let rest = path.utf8.dropFirst(Self.path.utf8.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "?")
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        channel = context.channel
        eventLoop = context.eventLoop
        encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        encoder = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        read(unwrapInboundIn(data), context: context)
    }

    private func read(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch state {
        case .passing:
            if case .head(let request) = part {
                if Self.isStreamRequest(request) {
                    state = .receiving(request)
                    return
                }
                unfinishedResponses += 1
            }
            context.fireChannelRead(wrapInboundOut(part))
        case .receiving(let request):
            // A GET's body, if a client sends one, is not read.
            if case .end = part {
                state = .queued(request)
                openIfItsTurn()
            }
        case .queued, .opening, .streaming:
            guard heldParts.count < Self.maxHeldParts else {
                context.close(promise: nil)
                return
            }
            heldParts.append(part)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let isEnd = if case .end = unwrapOutboundIn(data) { true } else { false }
        context.write(data, promise: promise)
        if isEnd {
            unfinishedResponses -= 1
            openIfItsTurn()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .streaming(let stream, _) = state { stream.end(.closed) }
        context.fireChannelInactive()
    }

    // MARK: Opening

    private func openIfItsTurn() {
        guard case .queued(let request) = state, unfinishedResponses == 0 else { return }
        state = .opening(request)
        let opener = self.opener
        Task {
            let result: Result<LiveStream, any Error>
            do { result = .success(try await opener.open(request, on: self)) } catch { result = .failure(error) }
            eventLoop.execute { self.opened(request, result) }
        }
    }

    private func opened(_ request: HTTPRequest, _ result: Result<LiveStream, any Error>) {
        guard let context, context.channel.isActive, case .opening = state else {
            if case .success(let stream) = result { stream.end(.closed) }
            return
        }
        var headers = opener.responseHeaders(for: request)
        switch result {
        case .success(let stream):
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-store"
            headers[.xAccelBuffering] = "no"
            context.write(wrapOutboundOut(.head(HTTPResponse(status: .ok, headerFields: headers))), promise: nil)
            state = .streaming(stream, closeAfter: Self.wantsClose(request))
            stream.start(retryLine: EventStreamRoute.retryLine) // writes and flushes
        case .failure(let error):
            let refusal = error as? APIError ?? APIError(.internalServerError, "internal error")
            let body = ByteBuffer(bytes: JSONBody.error(refusal.message))
            for field in refusal.headers { headers[field.name] = field.value }
            headers[.contentType] = "application/json; charset=utf-8"
            headers[.contentLength] = String(body.readableBytes)
            context.write(wrapOutboundOut(.head(HTTPResponse(status: refusal.status, headerFields: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            finishRequest(closeAfter: Self.wantsClose(request))
        }
    }

    private static func wantsClose(_ request: HTTPRequest) -> Bool {
        request.headerFields[.connection]?.lowercased().contains("close") ?? false
    }

    /// The stream request is answered: back to passing requests through, starting with the held ones.
    private func finishRequest(closeAfter: Bool) {
        state = .passing
        guard let context else { return }
        if closeAfter {
            context.close(promise: nil)
            return
        }
        let parts = heldParts
        heldParts = []
        guard !parts.isEmpty else { return }
        for part in parts { read(part, context: context) }
        context.fireChannelReadComplete()
    }

    // MARK: What the stream writes with (on the event loop)

    var isWritable: Bool { channel?.isWritable ?? false }

    func write(_ bytes: StreamBytes) {
        if let encoder {
            encoder.write(NIOAny(IOData.byteBuffer(bytes.chunk)), promise: nil)
        } else {
            context?.write(wrapOutboundOut(.body(bytes.body)), promise: nil)
        }
    }

    func flush() {
        (encoder ?? context)?.flush()
    }

    func close() {
        context?.close(promise: nil)
    }

    /// The stream ended (`LiveStream.end`): a complete stream gets its final chunk.
    func streamEnded(_ end: LiveStream.End) {
        guard case .streaming(_, let closeAfter) = state else { return }
        if case .finished = end {
            context?.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            finishRequest(closeAfter: closeAfter)
        } else {
            state = .passing
        }
    }

    /// From the catch-up task: writes one replayed event; completes when it is on the wire. Fails
    /// once the stream is over (revoked, drained, cut off), which ends the catch-up: a replay never
    /// writes past its stream's end.
    func writeReplayed(_ bytes: ByteBuffer) async throws {
        try await eventLoop.flatSubmit { [self] () -> EventLoopFuture<Void> in
            guard let context, case .streaming(let stream, _) = state, !stream.isOver else {
                return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
            }
            return context.writeAndFlush(wrapOutboundOut(.body(bytes)))
        }.get()
    }
}
