import Foundation
import Synchronization

/// One server-sent event as a client sees it.
struct SSEEvent: Sendable, Equatable {
    var name = "message"
    var id: String?
    var data: [String] = []
}

/// A minimal HTTP/1.1 SSE client over a plain socket, read on a thread of its own (blocking reads
/// must not sit on the Swift concurrency pool). Decodes chunked bodies and SSE framing, and can
/// also be a client that never reads (`reading: false`), to play the slow consumer.
final class SSETestClient: Sendable {
    let events: AsyncStream<SSEEvent>
    private let continuation: AsyncStream<SSEEvent>.Continuation
    private let socket: Int32
    private let head = Mutex<(status: Int, done: Bool)>((0, false))
    let closedByServer = Atomic<Bool>(false)

    /// Connects to localhost:`port` and sends `GET path` with `headers`.
    init(port: Int, path: String, headers: [String: String], reading: Bool = true) throws {
        (events, continuation) = AsyncStream.makeStream(of: SSEEvent.self)
        socket = try Self.connect(port: port, smallBuffer: !reading)
        var request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        _ = request.withCString { send(socket, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        if reading {
            let thread = Thread { [self] in self.readLoop() }
            thread.start()
        }
    }

    deinit { close() }

    func close() {
        shutdown(socket, Int32(SHUT_RDWR))
    }

    /// The response status, once the head arrived (0 before).
    var status: Int { head.withLock { $0.status } }

    /// The next event matching `predicate`, or nil after `timeout`.
    func next(within timeout: Duration, where predicate: @escaping @Sendable (SSEEvent) -> Bool = { _ in true }) async -> SSEEvent? {
        let events = self.events
        return await withTaskGroup(of: SSEEvent?.self) { group in
            group.addTask {
                for await event in events where predicate(event) { return event }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Whether the server ended the stream (its last chunk, or the connection closed) within
    /// `timeout`; events before the end are skipped.
    func ended(within timeout: Duration) async -> Bool {
        let events = self.events
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in events {}
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// For a client that never read: drains what is buffered and reports whether the server has
    /// closed the connection within `timeout`.
    func serverClosed(within timeout: Duration) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count == 0 { return true }
            if count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return true }
        }
        return false
    }

    private func readLoop() {
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 16_384)
        var headParsed = false
        var body = [UInt8]()
        var pendingChunk = 0 // bytes of the current chunk still to read; -1 between chunks
        var finished = false
        var event = SSEEvent()
        var text = [UInt8]()
        pendingChunk = -1
        defer {
            closedByServer.store(true, ordering: .relaxed)
            continuation.finish()
        }
        while true {
            let count = recv(socket, &chunk, chunk.count, 0)
            if count <= 0 { return }
            buffer.append(contentsOf: chunk[0..<count])
            if !headParsed {
                guard let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) else { continue }
                let headText = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                let status = Int(headText.split(separator: " ").dropFirst().first ?? "") ?? 0
                head.withLock { $0 = (status, true) }
                buffer.removeSubrange(..<end.upperBound)
                headParsed = true
            }
            // Chunked transfer decoding into `body`.
            while true {
                if pendingChunk < 0 {
                    guard let lineEnd = buffer.firstRange(of: Array("\r\n".utf8)) else { break }
                    let sizeText = String(decoding: buffer[..<lineEnd.lowerBound], as: UTF8.self)
                    buffer.removeSubrange(..<lineEnd.upperBound)
                    if sizeText.isEmpty { continue }
                    guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else { return }
                    if size == 0 { finished = true; break } // the last chunk: parse what came with it, then stop
                    pendingChunk = size
                }
                let take = min(pendingChunk, buffer.count)
                body.append(contentsOf: buffer[..<take])
                buffer.removeSubrange(..<take)
                pendingChunk -= take
                if pendingChunk > 0 { break }
                pendingChunk = -1
            }
            // SSE lines out of `body`.
            while let newline = body.firstIndex(of: UInt8(ascii: "\n")) {
                text = Array(body[..<newline])
                body.removeSubrange(...newline)
                let line = String(decoding: text, as: UTF8.self)
                if line.isEmpty {
                    if !event.data.isEmpty || event.name != "message" { continuation.yield(event) }
                    event = SSEEvent()
                } else if line.hasPrefix(":") {
                    continuation.yield(SSEEvent(name: "comment", data: [String(line.dropFirst())]))
                } else if line.hasPrefix("event: ") {
                    event.name = String(line.dropFirst(7))
                } else if line.hasPrefix("id: ") {
                    event.id = String(line.dropFirst(4))
                } else if line.hasPrefix("data: ") {
                    event.data.append(String(line.dropFirst(6)))
                } else if line.hasPrefix("retry: ") {
                    continuation.yield(SSEEvent(name: "retry", data: [String(line.dropFirst(7))]))
                }
            }
            if finished { return }
        }
    }

    private static func connect(port: Int, smallBuffer: Bool) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo("localhost", String(port), &hints, &results) == 0, let first = results else {
            throw POSIXError(.EHOSTUNREACH)
        }
        defer { freeaddrinfo(first) }
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            let fd = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd >= 0 {
                if smallBuffer {
                    var size: Int32 = 4096
                    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
                }
                if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
                Glibc.close(fd)
            }
            candidate = info.pointee.ai_next
        }
        throw POSIXError(.ECONNREFUSED)
    }
}
