import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// The e2e bench's SSE listeners: one NIO channel each, on the load generator's event loop. Each
/// picks the command id out of every `todo-event` it receives, with the arrival time, so the bench
/// can time POST → event on another member's stream.
final class SSEClients: @unchecked Sendable {
    private let group: EventLoopGroup
    private let host: String
    private let port: Int
    private var probes: [(channel: Channel, probe: SSEProbe)] = []

    init(group: EventLoopGroup, host: String, port: Int) {
        self.group = group
        self.host = host
        self.port = port
    }

    static func request(host: String, port: Int, path: String, token: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAuthorization: Bearer \(token)\r\nAccept: text/event-stream\r\n\r\n"
    }

    /// Command ids and arrival times every stream received since the last call.
    func drainReceived() async throws -> [(commandID: String, at: UInt64)] {
        var all: [(commandID: String, at: UInt64)] = []
        for (channel, probe) in probes {
            all += try await channel.eventLoop.submit { probe.drainReceived() }.get()
        }
        return all
    }

    /// Opens one stream per request (each its own path and token), at most 200 connecting at a
    /// time. Returns how many were refused (status other than 200).
    func open(_ requests: [String]) async throws -> (opened: Int, refused: Int) {
        var refused = 0
        var next = 0
        let started = Date()
        try await withThrowingTaskGroup(of: (Channel, SSEProbe, Int).self) { tasks in
            func add() {
                let probe = SSEProbe(request: requests[next], eventLoop: group.next())
                let bootstrap = ClientBootstrap(group: group).channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(probe) }
                }
                let (host, port) = (self.host, self.port)
                tasks.addTask {
                    let channel = try await bootstrap.connect(host: host, port: port).get()
                    let status = try await probe.status.futureResult.get()
                    return (channel, probe, status)
                }
            }
            while next < min(requests.count, 200) { add(); next += 1 }
            while let (channel, probe, status) = try await tasks.next() {
                if status == 200 { probes.append((channel, probe)) } else { refused += 1; channel.close(promise: nil) }
                if next < requests.count { add(); next += 1 }
                let done = probes.count + refused
                if done % 2500 == 0 { print("  \(probes.count) streams open (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)") }
            }
        }
        return (requests.count - refused, refused)
    }

    func closeAll() {
        for (channel, _) in probes { channel.close(promise: nil) }
        probes.removeAll()
    }
}

/// One SSE listener connection: sends the request, reports the status, and records the command id
/// of each `todo-event` (the marker is matched across reads) with the time its bytes arrived.
final class SSEProbe: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private static let marker = Array("event: todo-event".utf8)
    private static let statusPrefix = Array("HTTP/1.1 ".utf8)
    private static let commandKey = Array(#""command_id":""#.utf8)

    let status: EventLoopPromise<Int>
    private let request: String
    private var head: [UInt8] = []
    private var statusKnown = false
    private var matched = 0
    private var received: [(commandID: String, at: UInt64)] = []
    /// Where the byte scan is: looking for the next todo-event, for the command id's key in its
    /// data, or reading the id. One pass over the bytes, nothing buffered but the id (buffering the
    /// event and searching it with `firstRange` was a sixth of the load generator's CPU).
    private enum Scan { case event, commandKey, commandID }
    private var scan = Scan.event
    private var keyMatched = 0
    private var afterNewline = false
    private var commandID: [UInt8] = []
    private var eventAt: UInt64 = 0

    init(request: String, eventLoop: EventLoop) {
        self.request = request
        status = eventLoop.makePromise()
    }

    /// Takes what was received so far (the probe keeps recording).
    func drainReceived() -> [(commandID: String, at: UInt64)] {
        defer { received.removeAll(keepingCapacity: true) }
        return received
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = DispatchTime.now().uptimeNanoseconds
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            if !statusKnown {
                let take = min(bytes.count, 12 - head.count)
                head.append(contentsOf: bytes.prefix(take))
                start = take
                if head.count == 12 {
                    statusKnown = true
                    let code = head.starts(with: Self.statusPrefix) ? Int(String(decoding: head.suffix(3), as: UTF8.self)) ?? 0 : 0
                    status.succeed(code)
                }
            }
            scan(UnsafeRawBufferPointer(rebasing: bytes[start...]), now: now)
        }
    }

    /// Scans one read: after the marker, the event's data is searched for the command id's key (up
    /// to the blank line that ends the event), then the id is read up to its quote. The state lives
    /// in locals while the bytes are walked and is stored once at the end (per byte, reading the
    /// static markers and the instance's fields cost a lazy-initialiser check and an exclusivity
    /// check each: ~7% of the load generator's CPU).
    private func scan(_ bytes: UnsafeRawBufferPointer, now: UInt64) {
        var scan = self.scan, matched = self.matched, keyMatched = self.keyMatched
        var afterNewline = self.afterNewline, eventAt = self.eventAt
        defer {
            self.scan = scan; self.matched = matched; self.keyMatched = keyMatched
            self.afterNewline = afterNewline; self.eventAt = eventAt
        }
        Self.marker.withUnsafeBufferPointer { marker in
            Self.commandKey.withUnsafeBufferPointer { key in
                for byte in bytes {
                    switch scan {
                    case .event:
                        if byte == marker[matched] {
                            matched += 1
                            if matched == marker.count {
                                matched = 0
                                scan = .commandKey
                                keyMatched = 0
                                afterNewline = false
                                eventAt = now
                            }
                        } else {
                            matched = byte == marker[0] ? 1 : 0
                        }
                    case .commandKey:
                        if byte == key[keyMatched] {
                            keyMatched += 1
                            if keyMatched == key.count {
                                scan = .commandID
                                commandID.removeAll(keepingCapacity: true)
                            }
                        } else {
                            keyMatched = byte == key[0] ? 1 : 0
                            if byte == UInt8(ascii: "\n") && afterNewline { scan = .event } // the event ended without one
                        }
                        afterNewline = byte == UInt8(ascii: "\n")
                    case .commandID:
                        if byte == UInt8(ascii: "\"") {
                            received.append((String(decoding: commandID, as: UTF8.self), eventAt))
                            scan = .event
                        } else if commandID.count < 256 {
                            commandID.append(byte)
                        } else {
                            scan = .event
                        }
                    }
                }
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !statusKnown { statusKnown = true; status.succeed(0) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !statusKnown { statusKnown = true; status.fail(error) }
        context.close(promise: nil)
    }
}
