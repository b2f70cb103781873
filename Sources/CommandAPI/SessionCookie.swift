import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird

/// The browser's refresh token (DESIGN §11): an `HttpOnly`, `SameSite=Strict` cookie scoped to
/// `/api/v1/auth`, `Secure` everywhere but a local development run over plain http. JavaScript
/// never sees it; the page keeps only the short-lived access token, in memory.
///
/// A browser asks for it with `X-Session-Transport: cookie` on register, login, refresh, logout
/// and password change; the response then carries the token in `Set-Cookie` and not in the body.
/// The custom header is the CSRF defence besides SameSite: a page of another site cannot send it
/// without a CORS preflight, which command-api refuses for origins other than the UI's.
public struct SessionCookie: Sendable {
    public static let name = "refresh_token"
    public static let path = "/api/v1/auth"
    public static let transportHeader = HTTPField.Name("X-Session-Transport")!

    let secure: Bool
    let maxAgeSeconds: Int
    let cors: CORSPolicy

    public init(secure: Bool, refreshTokenDays: Int, cors: CORSPolicy) {
        self.secure = secure
        maxAgeSeconds = refreshTokenDays * 86_400
        self.cors = cors
    }

    /// Whether the request asks for the cookie; 400 for an `X-Session-Transport` other than `cookie`.
    public static func isRequested(by request: Request) throws -> Bool {
        guard let value = request.headers[transportHeader] else { return false }
        guard value == "cookie" else { throw APIError.badRequest("X-Session-Transport: must be cookie") }
        return true
    }

    public func set(_ token: String) -> String {
        attributes("\(Self.name)=\(token)", maxAge: maxAgeSeconds)
    }

    public var clear: String { attributes("\(Self.name)=", maxAge: 0) }

    private func attributes(_ pair: String, maxAge: Int) -> String {
        "\(pair); Path=\(Self.path); Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    /// The refresh token from the request's `Cookie` header fields.
    public static func token(in headers: HTTPFields) -> String? {
        for field in headers[values: .cookie] {
            for pair in field.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                guard trimmed.hasPrefix(name + "=") else { continue }
                let value = trimmed.dropFirst(name.count + 1)
                if !value.isEmpty { return String(value) }
            }
        }
        return nil
    }

    /// A cookie-authenticated request from a browser page of another origin is refused (browsers
    /// send `Origin` with every POST; requests without one are not from a page).
    public func checkOrigin(of request: Request) throws {
        if let origin = request.headers[.origin], !cors.allowedOrigins.contains(origin) {
            throw APIError.forbidden("origin \(origin) may not use the session cookie")
        }
    }

    /// Refuses, before any work, a browser request for the cookie from another origin.
    func admit(_ request: Request) throws {
        if try Self.isRequested(by: request) { try checkOrigin(of: request) }
    }

    /// The auth response: in the cookie (and not the body) for a browser that asked for it.
    func respond(with auth: AuthResponse, to request: Request, status: HTTPResponse.Status = .ok) throws -> Response {
        var headers: HTTPFields = [.cacheControl: "no-store"]
        var body = auth
        if try Self.isRequested(by: request), let token = auth.refreshToken {
            headers[.setCookie] = set(token)
            body.refreshToken = nil
        }
        return try JSONBody.response(body, status: status, headers: headers)
    }
}
