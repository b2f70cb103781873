import Foundation
import Hummingbird

/// Cross-origin requests only from the UI's origin (and, in development, the same origin spelled
/// with another loopback host: localhost, 127.0.0.1, [::1]). Other origins get no CORS headers, so
/// browsers refuse them; their preflights get 403.
public struct CORSPolicy: Sendable {
    public let allowedOrigins: Set<String>

    public init(uiOrigin: String, development: Bool) {
        allowedOrigins = Self.origins(uiOrigin: uiOrigin, development: development)
    }

    public static func origins(uiOrigin: String, development: Bool) -> Set<String> {
        let origin = uiOrigin.hasSuffix("/") ? String(uiOrigin.dropLast()) : uiOrigin
        var origins: Set<String> = [origin]
        guard development, let url = URL(string: origin), let scheme = url.scheme, let host = url.host(percentEncoded: false) else {
            return origins
        }
        let loopback = ["localhost", "127.0.0.1", "[::1]"]
        let bareHost = host.hasPrefix("[") ? host : (host.contains(":") ? "[\(host)]" : host)
        guard loopback.contains(bareHost) else { return origins }
        let port = url.port.map { ":\($0)" } ?? ""
        for other in loopback { origins.insert("\(scheme)://\(other)\(port)") }
        return origins
    }

    /// The headers a response to a request with `Origin: origin` carries (none for other origins).
    public func headers(origin: String?) -> HTTPFields {
        guard let origin, allowedOrigins.contains(origin) else { return [:] }
        return [.accessControlAllowOrigin: origin, .accessControlAllowCredentials: "true", .vary: "Origin",
                .accessControlExposeHeaders: "Retry-After"]
    }
}

/// `CORSPolicy` for the router's routes, preflights included.
public struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    public let policy: CORSPolicy

    public init(uiOrigin: String, development: Bool) {
        policy = CORSPolicy(uiOrigin: uiOrigin, development: development)
    }

    public init(_ policy: CORSPolicy) {
        self.policy = policy
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        let allowed = policy.allowedOrigins.contains(origin)
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            guard allowed else { throw APIError.forbidden("origin \(origin) is not allowed") }
            var headers = policy.headers(origin: origin)
            headers[.accessControlAllowMethods] = "GET, POST, PATCH, DELETE, OPTIONS"
            headers[.accessControlAllowHeaders] = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Session-Transport"
            headers[.accessControlMaxAge] = "600"
            return Response(status: .noContent, headers: headers)
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        if allowed {
            for field in policy.headers(origin: origin) { response.headers[field.name] = field.value }
        }
        return response
    }
}
