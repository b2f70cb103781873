import Hummingbird
import HTTPTypes

/// The response headers of DESIGN §11 on every response of an HTTP service:
/// `X-Content-Type-Options: nosniff` always; `Cache-Control: no-store` on answers to authenticated
/// requests (unless the route chose its own); `Strict-Transport-Security` in production, which is
/// served over HTTPS only (browsers ignore it over plain http anyway).
public struct SecurityHeaders: Sendable {
    public let hsts: Bool

    public init(production: Bool) {
        hsts = production
    }

    public static let hstsValue = "max-age=31536000; includeSubDomains"

    /// Adds the headers to `headers` for a request that did (or did not) carry credentials.
    public func apply(to headers: inout HTTPFields, authenticated: Bool) {
        headers[.xContentTypeOptions] = "nosniff"
        if authenticated, headers[.cacheControl] == nil { headers[.cacheControl] = "no-store" }
        if hsts { headers[.strictTransportSecurity] = Self.hstsValue }
    }

    /// Whether a request carries credentials: a bearer token or the session cookie.
    public static func isAuthenticated(_ headers: HTTPFields) -> Bool {
        headers[.authorization] != nil || headers[.cookie] != nil
    }
}

/// `SecurityHeaders` on every response of the router, errors included. First in the chain.
public struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    let headers: SecurityHeaders

    public init(_ headers: SecurityHeaders) {
        self.headers = headers
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        headers.apply(to: &response.headers, authenticated: SecurityHeaders.isAuthenticated(request.headers))
        return response
    }
}

/// Paths are matched as sent, so one resource has one spelling: a path with an empty segment
/// (`//api/…`), a dot segment (`/./`, `/../`) or an encoded slash or dot is refused with 400 before
/// any limit or route sees it (limits key on paths; a second spelling must not skip one).
public struct CanonicalPathMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard Self.isCanonical(request.uri.path) else {
            throw APIError.badRequest("path: empty segments, dot segments and encoded slashes or dots are not allowed")
        }
        return try await next(request, context)
    }

    public static func isCanonical(_ path: String) -> Bool {
        guard path.hasPrefix("/") else { return false }
        let segments = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        for (index, segment) in segments.enumerated() {
            // An empty segment only as the trailing slash of a non-root path is not allowed either.
            if segment.isEmpty { return path == "/" && index == 0 }
            if segment.elementsEqual(".".utf8) || segment.elementsEqual("..".utf8) { return false }
        }
        let lowered = path.lowercased()
        return !lowered.contains("%2f") && !lowered.contains("%2e") && !lowered.contains("%5c") && !path.contains("\\")
    }
}
