import Metrics
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose next request does not arrive in time (DESIGN §11): its head within
/// `headerTimeout` of the connection's start (a client that sends half a request, a byte now and
/// then, keeps no socket) and within `idleTimeout` of the last response's end (an idle keep-alive
/// connection); its body within `idleTimeout` of its head (bodies are at most 64 KiB). Once a
/// request is in, its response (an SSE stream too) takes as long as it takes.
///
/// Sits after the HTTP codec, where a head is seen only once it is complete.
public final class RequestHeadTimeout: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    let headerTimeout: TimeAmount
    let idleTimeout: TimeAmount
    private var inFlight = 0
    private var timer: Scheduled<Void>?
    static let closed = TimeoutCounter()

    public init(headerTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, headerTimeout) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        arm(context, headerTimeout)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            inFlight += 1
            arm(context, idleTimeout) // for the body
        case .end:
            timer?.cancel()
            timer = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            inFlight = max(0, inFlight - 1)
            if inFlight == 0 { arm(context, idleTimeout) }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext, _ delay: TimeAmount) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: delay) {
            RequestHeadTimeout.closed.increment()
            channel.close(promise: nil)
        }
    }
}

/// `http_request_head_timeouts_total`: connections closed for want of a request head.
final class TimeoutCounter: Sendable {
    private let counter = Metrics.Counter(label: "http_request_head_timeouts_total")
    func increment() { counter.increment() }
}
