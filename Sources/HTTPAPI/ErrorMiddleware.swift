import Foundation
import Hummingbird
import Logging

/// Turns every error into the JSON error shape with a fitting status: `APIError` as is, the
/// framework's own errors (unknown route, body too large) with their status, malformed JSON as 400,
/// and anything else as a logged 500 that reveals nothing.
public struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Known paths, for a 405 (with `Allow`) instead of a 404 when only the method is wrong.
    let allowedMethods: AllowedMethods?

    public init(allowedMethods: AllowedMethods? = nil) {
        self.allowedMethods = allowedMethods
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            switch error.status {
            case .contentTooLarge: throw APIError.tooLarge
            case .notFound:
                let allowed = allowedMethods?.methods(for: request.uri.path) ?? []
                guard allowed.isEmpty else {
                    throw APIError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path)",
                                   headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")])
                }
                throw APIError.notFound("no route for \(request.method) \(request.uri.path)")
            case .methodNotAllowed: throw APIError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path)")
            default: throw APIError(error.status, error.body ?? error.status.reasonPhrase)
            }
        } catch let error as any HTTPResponseError {
            throw error.status == .contentTooLarge ? APIError.tooLarge : APIError(error.status, error.status.reasonPhrase)
        } catch is DecodingError {
            throw APIError.badRequest("the body is not valid JSON of the expected shape")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw APIError(.internalServerError, "internal error")
        }
    }
}
