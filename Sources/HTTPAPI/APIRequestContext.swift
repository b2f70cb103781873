import Hummingbird
import NIOCore

/// The request context of both HTTP services: the peer's socket address (for per-IP limits), the
/// authenticated user once a route checked the token, and a 64 KiB body limit.
public struct APIRequestContext: RequestContext, RemoteAddressRequestContext {
    public static let maxBodyBytes = 64 * 1024

    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The connection, so a long stream can be cut off (a client too slow to read).
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }

    public var maxUploadSize: Int { Self.maxBodyBytes }
}

extension Request {
    /// The body, at most `limit` bytes (413 beyond, also when Content-Length says so up front).
    public func collectLimitedBody(context: APIRequestContext, limit: Int = APIRequestContext.maxBodyBytes) async throws -> ByteBuffer {
        if let length = headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError.tooLarge(limit: limit)
        }
        var request = self
        do { return try await request.collectBody(upTo: limit) } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError.tooLarge(limit: limit)
        }
    }
}
