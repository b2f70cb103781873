import NIOCore

/// HTTP/1.1 chunked transfer coding of one piece of a response body (RFC 9112 §7.1):
/// the size in hex, CRLF, the bytes, CRLF. A stream's events are framed once per event and the
/// same bytes go to every connection (`SSEConnectionHandler` writes them below the HTTP encoder).
enum HTTPChunk {
    static func frame(_ body: ByteBuffer) -> ByteBuffer {
        let size = String(body.readableBytes, radix: 16)
        var chunk = ByteBuffer()
        chunk.reserveCapacity(size.utf8.count + body.readableBytes + 4)
        chunk.writeString(size)
        chunk.writeStaticString("\r\n")
        chunk.writeImmutableBuffer(body)
        chunk.writeStaticString("\r\n")
        return chunk
    }
}

/// Bytes a stream writes, in both forms: as a response body part (through the HTTP encoder) and
/// already framed as a chunk (written below it).
struct StreamBytes: Sendable {
    let body: ByteBuffer
    let chunk: ByteBuffer

    init(_ body: ByteBuffer) {
        self.body = body
        chunk = HTTPChunk.frame(body)
    }

    init(_ text: String) { self.init(ByteBuffer(string: text)) }

    init(_ event: RenderedEvent) {
        body = event.bytes
        chunk = event.chunk
    }
}
