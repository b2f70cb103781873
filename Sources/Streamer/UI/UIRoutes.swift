import Contracts
import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird
import Sharding

/// Pages, assets and the signed-in user's HTML fragments (DESIGN §7).
///
/// Pages are shells that need no session to be served: the browser keeps the session (see
/// docs/browser.md) and the script sends users without one to `/login`. Fragments need the bearer
/// token and membership, exactly like the JSON reads.
public enum UIRoutes {
    public static func add(to router: Router<APIRequestContext>, store: ReadStore, tokens: AccessTokens, commandAPI: String) {
        let pageHeaders = securityHeaders(commandAPI: commandAPI)
        for (path, page) in [("/", Pages.Page.login), ("/login", .login), ("/app", .app), ("/settings", .settings),
                             ("/architecture", .architecture)] {
            let html = ByteBuffer(string: Pages.render(page, commandAPI: commandAPI))
            router.get(RouterPath(path)) { _, _ in
                Response(status: .ok, headers: pageHeaders, body: .init(byteBuffer: html))
            }
        }
        for asset in Assets.all {
            router.get(RouterPath("/assets/\(asset.name)")) { request, _ in
                if request.headers[.ifNoneMatch] == asset.etag {
                    return Response(status: .notModified, headers: [.eTag: asset.etag])
                }
                return Response(status: .ok, headers: [.contentType: asset.contentType, .eTag: asset.etag, .cacheControl: "no-cache",
                                                       .xContentTypeOptions: "nosniff"],
                                body: .init(byteBuffer: asset.bytes))
            }
        }

        router.get("/ui/overview") { request, _ in
            let user = try await tokens.authenticate(request)
            return fragment(UIFragments.overview(try await store.groups(of: user.userID)))
        }
        router.get("/ui/workspace") { request, _ in
            let (user, group, role) = try await member(request, store: store, tokens: tokens)
            // The board's first page is read first: its offset is the oldest, so replaying after it
            // can only repeat changes (idempotent patches), never skip one.
            var page = try await store.todos(of: group.groupID, limit: 200, after: nil)
            let version = page.offset.groupVersion
            var todos = page.todos
            while let next = page.nextCursor.flatMap(TodoCursor.init(encoded:)), todos.count < maxBoardCards {
                page = try await store.todos(of: group.groupID, limit: 200, after: next)
                todos += page.todos
            }
            let members = try await store.members(of: group.groupID)
            return fragment(UIFragments.workspace(.init(group: group, viewer: user.id, role: role,
                                                        todos: todos, members: members, groupVersion: version)))
        }
        router.get("/ui/members") { request, _ in
            let (user, group, role) = try await member(request, store: store, tokens: tokens)
            return fragment(UIFragments.membersPanel(try await store.members(of: group.groupID),
                                                     viewer: user.id, role: role))
        }
        router.get("/ui/settings") { request, _ in
            let (user, group, role) = try await member(request, store: store, tokens: tokens)
            return fragment(UIFragments.settings(group: group, members: try await store.members(of: group.groupID),
                                                 viewer: user.id, role: role))
        }
    }

    /// A board shows at most this many cards (the JSON read API pages through any number).
    static let maxBoardCards = 2_000

    /// The caller, the group (from `group_id`) and the caller's role in it; 400/401/403/404 otherwise.
    static func member(_ request: Request, store: ReadStore, tokens: AccessTokens) async throws
        -> (AuthenticatedUser, ReadStore.GroupSummary, GroupRole) {
        let user = try await tokens.authenticate(request)
        let group = try StreamerRoutes.groupID(request.uri.queryParameters.get("group_id"))
        let role = try await store.membership(of: user.userID, in: group.rawValue).requireMember(group.rawValue)
        guard let summary = try await store.group(group.rawValue, of: user.userID) else {
            throw APIError.notFound("group \(group.rawValue) does not exist")
        }
        return (user, summary, role)
    }

    static func fragment(_ html: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// Scripts only from this origin, no inline script, no framing; fetches to this origin and to
    /// command-api.
    static func securityHeaders(commandAPI: String) -> HTTPFields {
        var connect = "'self'"
        if let url = URL(string: commandAPI), let scheme = url.scheme, let host = url.host {
            connect += " \(scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")"
            // In development the page may be opened as localhost or 127.0.0.1; allow both spellings.
            if ["127.0.0.1", "localhost"].contains(host) {
                connect += " \(scheme)://\(host == "localhost" ? "127.0.0.1" : "localhost")\(url.port.map { ":\($0)" } ?? "")"
            }
        }
        let policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src \(connect); "
            + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
        return [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: policy, .xContentTypeOptions: "nosniff",
                .referrerPolicy: "no-referrer", .cacheControl: "no-cache", .xFrameOptions: "DENY"]
    }
}

/// The stylesheet, the script and the icon, read once from the module's resources.
enum Assets {
    struct Asset: Sendable {
        let name: String
        let contentType: String
        let bytes: ByteBuffer
        let etag: String
    }

    static let all: [Asset] = [
        load("app.css", "text/css; charset=utf-8"),
        load("app.js", "text/javascript; charset=utf-8"),
        load("icon.svg", "image/svg+xml"),
    ]

    static func load(_ name: String, _ contentType: String) -> Asset {
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        guard let url = Bundle.module.url(forResource: parts[0], withExtension: parts[1], subdirectory: "Assets"),
              let data = try? Data(contentsOf: url) else {
            fatalError("the streamer's asset \(name) is missing from its resource bundle")
        }
        let etag = "\"\(String(UInt32(truncatingIfNeeded: data.reduce(into: UInt64(1469598103934665603)) { $0 = ($0 ^ UInt64($1)) &* 1099511628211 }), radix: 16))-\(data.count)\""
        return Asset(name: name, contentType: contentType, bytes: ByteBuffer(bytes: data), etag: etag)
    }
}

extension HTTPField.Name {
    static let contentSecurityPolicy = Self("Content-Security-Policy")!
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let xFrameOptions = Self("X-Frame-Options")!
}
