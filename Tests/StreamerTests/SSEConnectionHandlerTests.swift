import HTTPAPI
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Synchronization
import Testing
@testable import Streamer

/// The pipeline handler that serves `GET /events` below the router: what it takes, what it
/// passes on, and that HTTP/1.1 pipelining stays in order around a stream.
@Suite("SSE connection handler")
struct SSEConnectionHandlerTests {
    /// Refuses every stream with 403, or opens a stream the test can drive.
    final class Opener: SSEStreamOpener {
        let refuse: Bool
        let opened = Mutex<LiveStream?>(nil)
        init(refuse: Bool) { self.refuse = refuse }

        func open(_ request: HTTPRequest, on connection: SSEConnectionHandler) async throws -> LiveStream {
            if refuse { throw APIError.forbidden("not a member of this group") }
            let stream = LiveStream(connection: connection, userID: "u", capacity: 4, resumeAfter: nil,
                                    catchUp: { _, _, _ in }, onEnd: { _, _ in })
            opened.withLock { $0 = stream }
            return stream
        }

        func responseHeaders(for request: HTTPRequest) -> HTTPFields { [.vary: "Origin"] }
    }

    static func get(_ path: String) -> HTTPRequestPart {
        .head(HTTPRequest(method: .get, scheme: "http", authority: "streamer", path: path))
    }

    static func channel(_ opener: Opener) async throws -> NIOAsyncTestingChannel {
        let channel = NIOAsyncTestingChannel()
        try await channel.pipeline.addHandler(SSEConnectionHandler(opener: opener))
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8081)) // active, like an accepted connection
        return channel
    }

    /// The next part the handler writes. The testing loop runs scheduled work only when told to,
    /// and the handler comes back to it from the opening task, so this runs it while waiting.
    static func written(_ channel: NIOAsyncTestingChannel) async throws -> HTTPResponsePart? {
        try await next(channel) { try await channel.readOutbound(as: HTTPResponsePart.self) }
    }

    /// The next request part the handler passes on to the router, likewise.
    static func passed(_ channel: NIOAsyncTestingChannel) async throws -> HTTPRequestPart? {
        try await next(channel) { try await channel.readInbound(as: HTTPRequestPart.self) }
    }

    private static func next<Part>(_ channel: NIOAsyncTestingChannel, _ read: () async throws -> Part?) async throws -> Part? {
        for _ in 0..<500 {
            await channel.testingEventLoop.run()
            if let part = try await read() { return part }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    static func text(_ part: HTTPResponsePart?) -> String? {
        guard case .body(let buffer) = part else { return nil }
        return String(buffer: buffer)
    }

    @Test func streamRequestsAreRecognisedByMethodAndExactPath() {
        func isStream(_ method: HTTPRequest.Method, _ path: String) -> Bool {
            SSEConnectionHandler.isStreamRequest(HTTPRequest(method: method, scheme: "http", authority: "s", path: path))
        }
        #expect(isStream(.get, "/events"))
        #expect(isStream(.get, "/events?group_id=g"))
        #expect(!isStream(.post, "/events?group_id=g"))
        #expect(!isStream(.get, "/eventsource"))
        #expect(!isStream(.get, "/api/v1/groups/g/events"))
    }

    @Test func aRefusalIsAJSONErrorAfterEarlierResponsesAndLaterRequestsPassOn() async throws {
        let channel = try await Self.channel(Opener(refuse: true))
        // A request for the router, then a pipelined stream request behind it.
        try await channel.writeInbound(Self.get("/api/v1/groups"))
        try await channel.writeInbound(HTTPRequestPart.end(nil))
        try await channel.writeInbound(Self.get("/events?group_id=g"))
        try await channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == Self.get("/api/v1/groups"))
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == .end(nil))
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == nil, "the stream request is not the router's")

        // Nothing is written for the stream request while the first response is unfinished.
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await channel.readOutbound(as: HTTPResponsePart.self) == nil)
        try await channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try await channel.writeOutbound(HTTPResponsePart.end(nil))
        #expect(try await Self.written(channel) == .head(HTTPResponse(status: .ok)))
        #expect(try await Self.written(channel) == .end(nil))

        guard case .head(let head) = try await Self.written(channel) else {
            Issue.record("a response head"); return
        }
        #expect(head.status == .forbidden)
        #expect(head.headerFields[.contentType] == "application/json; charset=utf-8")
        #expect(head.headerFields[.vary] == "Origin")
        let body = Self.text(try await Self.written(channel))
        #expect(body == #"{"error":"not a member of this group"}"#)
        #expect(head.headerFields[.contentLength] == String(body?.utf8.count ?? -1))
        #expect(try await Self.written(channel) == .end(nil))

        try await channel.writeInbound(Self.get("/healthz"))
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == Self.get("/healthz"))
    }

    @Test func aStreamIsWrittenByItsLoopAndRequestsBehindItWaitForItsEnd() async throws {
        let opener = Opener(refuse: false)
        let channel = try await Self.channel(opener)
        try await channel.writeInbound(Self.get("/events?group_id=g"))
        try await channel.writeInbound(HTTPRequestPart.end(nil))
        guard case .head(let head) = try await Self.written(channel) else {
            Issue.record("a response head"); return
        }
        #expect(head.status == .ok)
        #expect(head.headerFields[.contentType] == "text/event-stream")
        #expect(Self.text(try await Self.written(channel)) == "retry: 1000\n\n")
        let stream = try #require(opener.opened.withLock { $0 })

        // A request pipelined behind the stream is held.
        try await channel.writeInbound(Self.get("/healthz"))
        try await channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == nil)

        // Live events are written by the loop, once each, in order.
        let event = LiveStreamStateTests.event(1)
        try await channel.testingEventLoop.executeInContext {
            stream.deliver(event)
            stream.deliver(event)
        }
        #expect(Self.text(try await Self.written(channel)) == event.text)
        #expect(try await channel.readOutbound(as: HTTPResponsePart.self) == nil)

        // A run of events from one message: written in order, once each, past the stream's
        // capacity of 4 while it has room.
        let run = (2...7).map { LiveStreamStateTests.event(Int64($0)) }
        try await channel.testingEventLoop.executeInContext {
            stream.deliver(run + [run[2]])
        }
        for expected in run { #expect(Self.text(try await Self.written(channel)) == expected.text) }
        #expect(try await channel.readOutbound(as: HTTPResponsePart.self) == nil)

        // Shutdown: a reconnection hint, the final chunk, then the held request goes to the router.
        try await channel.testingEventLoop.executeInContext {
            stream.shutdown(retryLine: StreamBytes("retry: 3000\n\n"))
        }
        #expect(Self.text(try await Self.written(channel)) == "retry: 3000\n\n")
        #expect(try await Self.written(channel) == .end(nil))
        #expect(try await Self.passed(channel) == Self.get("/healthz"))
        #expect(try await Self.passed(channel) == .end(nil))
    }
}

/// With Hummingbird's HTTP/1 encoder in the pipeline, stream bytes are written below it, already
/// framed: the wire must still be one well-formed chunked response.
@Suite("SSE connection handler on the HTTP/1 encoder")
struct SSEConnectionHandlerWireTests {
    @Test func theStreamIsOneWellFormedChunkedResponse() async throws {
        let opener = SSEConnectionHandlerTests.Opener(refuse: false)
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandlers([HTTPResponseEncoder(), HTTP1ToHTTPServerCodec(secure: false),
                                                             SSEConnectionHandler(opener: opener)])
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8081))
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/events?group_id=g")
        head.headers.add(name: "host", value: "streamer")
        try await channel.writeInbound(HTTPServerRequestPart.head(head))
        try await channel.writeInbound(HTTPServerRequestPart.end(nil))

        var wire = ""
        func read() async throws {
            for _ in 0..<500 {
                await channel.testingEventLoop.run()
                while let data = try await channel.readOutbound(as: IOData.self) {
                    guard case .byteBuffer(let buffer) = data else { Issue.record("a file region"); return }
                    wire += String(buffer: buffer)
                }
                if opener.opened.withLock({ $0 }) != nil, wire.contains("retry: 1000") { return }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        try await read()
        let stream = try #require(opener.opened.withLock { $0 })
        let event = LiveStreamStateTests.event(1)
        try await channel.testingEventLoop.executeInContext {
            stream.deliver(event)
            stream.shutdown(retryLine: StreamBytes("retry: 3000\n\n"))
        }
        while let data = try await channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { wire += String(buffer: buffer) }
        }

        let parts = wire.components(separatedBy: "\r\n\r\n")
        #expect(parts.first?.hasPrefix("HTTP/1.1 200 OK") == true)
        #expect(parts.first?.lowercased().contains("transfer-encoding: chunked") == true)
        // Decode the chunked body and compare it with what the stream wrote.
        var body = Substring(wire[wire.range(of: "\r\n\r\n")!.upperBound...])
        var decoded = ""
        var complete = false
        while let lineEnd = body.range(of: "\r\n") {
            let size = Int(body[..<lineEnd.lowerBound], radix: 16) ?? -1
            body = body[lineEnd.upperBound...]
            if size == 0 { complete = body == "\r\n"; break }
            guard size > 0, body.utf8.count >= size + 2 else { break }
            let chunkEnd = body.utf8.index(body.startIndex, offsetBy: size)
            decoded += body[..<chunkEnd]
            #expect(body[chunkEnd...].hasPrefix("\r\n"))
            body = body[body.utf8.index(chunkEnd, offsetBy: 2)...]
        }
        #expect(decoded == "retry: 1000\n\n" + event.text + "retry: 3000\n\n")
        #expect(complete, "ends with the last chunk")
    }
}
