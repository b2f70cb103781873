import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import Sharding

/// The rate limits of command-api (issue "limits"): per client IP on everything, stricter per IP
/// and per username on the auth routes, per user on commands.
public struct CommandAPILimits: Sendable {
    public let perIP: RateLimiter
    public let authPerIP: RateLimiter
    public let loginPerUsername: RateLimiter
    public let commandsPerUser: RateLimiter
    public let importsPerUser: RateLimiter
    public let clientAddress: ClientAddressResolver

    public init(configuration: CommandAPIConfiguration) {
        perIP = RateLimiter(ratePerSecond: Double(configuration.requestsPerSecondPerIP), burst: Double(configuration.requestsPerSecondPerIP) * 2)
        let authRate = Double(configuration.authPerMinutePerIP) / 60
        authPerIP = RateLimiter(ratePerSecond: authRate, burst: max(5, Double(configuration.authPerMinutePerIP) / 3))
        loginPerUsername = RateLimiter(ratePerSecond: authRate, burst: max(5, Double(configuration.authPerMinutePerIP) / 3))
        commandsPerUser = RateLimiter(ratePerSecond: Double(configuration.commandsPerSecondPerUser),
                                      burst: Double(configuration.commandsPerSecondPerUser) * 2)
        importsPerUser = RateLimiter(ratePerSecond: Double(configuration.importsPerHourPerUser) / 3600,
                                     burst: Double(min(5, configuration.importsPerHourPerUser)))
        clientAddress = ClientAddressResolver(trustedProxies: configuration.trustedProxies)
    }

    func check(_ limiter: RateLimiter, _ key: String) throws {
        if case .limited(let seconds) = limiter.take(key) { throw APIError.tooManyRequests(retryAfterSeconds: seconds) }
    }

    func clientIP(_ request: Request, _ context: APIRequestContext) -> String {
        clientAddress.clientIP(remote: context.remoteAddress, headers: request.headers)
    }
}

/// Per-IP limit on every route but `/healthz` (paths are canonical by now: `CanonicalPathMiddleware`).
struct PerIPLimitMiddleware: RouterMiddleware {
    let limits: CommandAPILimits

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        if request.uri.path != "/healthz" {
            try limits.check(limits.perIP, limits.clientIP(request, context))
        }
        return try await next(request, context)
    }
}

/// The routes of DESIGN §5 for command-api.
public enum CommandAPIRoutes {
    /// The auth routes. Browsers ask for their refresh token in an HttpOnly cookie
    /// (`X-Session-Transport: cookie`, see `SessionCookie`); API clients get it in the body and
    /// send it back in the body.
    public static func addAuthRoutes(to router: Router<APIRequestContext>, auth: AuthService, tokens: AccessTokens,
                                     limits: CommandAPILimits, cookie: SessionCookie) {
        let routes = router.group("/api/v1/auth")
        routes.post("register") { request, context in
            try limits.check(limits.authPerIP, limits.clientIP(request, context))
            try cookie.admit(request)
            let credentials = try await credentials(request, context)
            return try cookie.respond(with: try await auth.register(credentials), to: request, status: .created)
        }
        routes.post("login") { request, context in
            let ip = limits.clientIP(request, context)
            try limits.check(limits.authPerIP, ip)
            try cookie.admit(request)
            let credentials = try await credentials(request, context)
            // Per username *and* address: guesses at one account are slowed, but nobody elsewhere
            // can use the limit to lock its owner out.
            try limits.check(limits.loginPerUsername, Username.normalize(credentials.username) + "|" + ip)
            return try cookie.respond(with: try await auth.login(credentials), to: request)
        }
        // No auth bucket on refresh: it needs a 256-bit token, which cannot be guessed, and every
        // page load of the workspace refreshes (the per-IP limit on every route still applies).
        routes.post("refresh") { request, context in
            guard let token = try await refreshToken(request, context, cookie: cookie, context: "refresh") else {
                throw APIError.unauthorized("no refresh token (in the body, or the session cookie with X-Session-Transport: cookie)")
            }
            do {
                return try cookie.respond(with: try await auth.refresh(token.value), to: request)
            } catch let error as APIError where token.fromCookie {
                // The cookie is spent: drop it, so the browser stops presenting it.
                throw error.with(headers: [.setCookie: cookie.clear])
            }
        }
        routes.post("logout") { request, context in
            // Without a token there is no session to end: the answer is the same.
            if let token = try await refreshToken(request, context, cookie: cookie, context: "logout") {
                try await auth.logout(token.value)
            }
            return Response(status: .noContent, headers: [.setCookie: cookie.clear, .cacheControl: "no-store"])
        }
        routes.post("logout-everywhere") { request, context in
            let user = try await tokens.authenticate(request)
            let fields = try await object(request, context)
            try field { try fields.rejectUnknown(context: "logout-everywhere") }
            try await auth.logoutEverywhere(user)
            return Response(status: .noContent, headers: [.setCookie: cookie.clear, .cacheControl: "no-store"])
        }
        routes.post("password") { request, context in
            try limits.check(limits.authPerIP, limits.clientIP(request, context))
            try cookie.admit(request)
            let user = try await tokens.authenticate(request)
            var fields = try await object(request, context)
            let current = try field { try fields.requiredString("current_password") }
            let new = try field { try fields.requiredString("new_password") }
            try field { try fields.rejectUnknown(context: "a password change") }
            let change = AuthService.PasswordChange(currentPassword: current, newPassword: new)
            return try cookie.respond(with: try await auth.changePassword(user, change), to: request)
        }
    }

    /// The refresh token of a refresh or logout: `refresh_token` in the body (API clients), or the
    /// session cookie when the request says it is a browser's (`X-Session-Transport: cookie`: a
    /// custom header, so a cross-site page cannot send it without a CORS preflight it fails).
    /// nil when there is neither.
    static func refreshToken(_ request: Request, _ context: APIRequestContext, cookie: SessionCookie,
                             context name: String) async throws -> (value: String, fromCookie: Bool)? {
        let wantsCookie = try SessionCookie.isRequested(by: request)
        var fields = try await object(request, context)
        let body = try field { try fields.string("refresh_token") }
        try field { try fields.rejectUnknown(context: name) }
        if let body {
            guard (1...256).contains(body.utf8.count) else { throw APIError.badRequest("refresh_token: 1–256 characters") }
            return (body, false)
        }
        guard wantsCookie else { return nil }
        try cookie.checkOrigin(of: request)
        return SessionCookie.token(in: request.headers).map { ($0, true) }
    }

    /// `GET`/`PATCH /api/v1/me`: the caller's profile (DESIGN §9).
    public static func addProfileRoutes(to router: Router<APIRequestContext>, profiles: ProfileStore, tokens: AccessTokens) {
        router.get("/api/v1/me") { request, _ in
            let user = try await tokens.authenticate(request)
            guard let profile = try await profiles.profile(of: user.userID) else { throw APIError.unauthorized("the account no longer exists") }
            return try JSONBody.response(profile)
        }
        router.patch("/api/v1/me") { request, context in
            let user = try await tokens.authenticate(request)
            var fields = try await object(request, context)
            let raw = try field { try fields.requiredString("timezone") }
            try field { try fields.rejectUnknown(context: "a profile") }
            let zone = try Profile.timezone(raw)
            guard let profile = try await profiles.setTimezone(of: user.userID, to: zone) else {
                throw APIError.unauthorized("the account no longer exists")
            }
            return try JSONBody.response(profile)
        }
    }

    /// `POST /api/v1/notifications/read` (DESIGN §9): the caller's own, then a signal to their
    /// streams so every open tab's bell follows. Limited as commands are.
    static func addNotificationRoutes(to router: Router<APIRequestContext>, reads: NotificationReads,
                                      signaller: any NotificationSignalling, tokens: AccessTokens, limits: CommandAPILimits) {
        router.post("/api/v1/notifications/read") { request, context in
            let user = try await tokens.authenticate(request)
            try limits.check(limits.commandsPerUser, user.id)
            var fields = try await object(request, context)
            let selection = try field { try NotificationReads.selection(&fields) }
            if try await reads.markRead(selection, of: user.id) > 0 { await signaller.notificationsRead(by: user.id) }
            return Response(status: .noContent, headers: [.cacheControl: "no-store"])
        }
    }

    /// - Parameters:
    ///   - membershipCache: this replica's cache of membership answers, forgotten for a group as soon as its membership changes.
    ///   - announcer: tells the other replicas to forget it too.
    public static func addGroupRoutes(to router: Router<APIRequestContext>, groups: GroupStore, relay: OutboxRelay, tokens: AccessTokens,
                                      limits: CommandAPILimits, membershipCache: MembershipCache? = nil,
                                      announcer: (any MembershipChangeAnnouncing)? = nil) {
        let routes = router.group("/api/v1/groups")
        routes.post { request, context in
            let actor = try await actor(request, tokens)
            var fields = try await object(request, context)
            let raw = try field { try fields.requiredString("name") }
            try field { try fields.rejectUnknown(context: "a group") }
            let name = try field { try CommandValidation.text(raw, field: "name", TextRules.groupName) }.trimmingWhitespace()
            guard !name.isEmpty else { throw APIError.badRequest("name: must be 1–\(TextRules.groupName.maxCharacters) characters") }
            let id = try await groups.createGroup(name: name, actor: actor)
            await relay.relay(groupID: id.rawValue)
            return try JSONBody.response(CreatedGroup(id: id.rawValue, name: name), status: .created)
        }
        routes.post("import") { request, context in
            let actor = try await actor(request, tokens)
            try limits.check(limits.importsPerUser, actor.id)
            let (id, plan) = try await GroupImport.admit {
                let body = try await request.collectLimitedBody(context: context, limit: GroupImport.maxBodyBytes)
                let id = try GroupID(Identifiers.newID())
                let plan = try GroupImport.plan(Data(buffer: body), group: id, importer: actor.username, limits: groups.limits)
                try await groups.importGroup(id: id, name: plan.name, todos: plan.todos, actor: actor)
                return (id, plan)
            }
            // The first pass publishes the `member.added` (and the next 499 rows) before the
            // answer, so the new owner's own commands find them a member. The rest may take a
            // while for a large import: it goes on after the answer (the relay's sweep finishes it
            // should this process stop).
            if await !relay.relay(groupID: id.rawValue) {
                Task {
                    for _ in 0..<(plan.todos.count / 500 + 5) {
                        if await relay.relay(groupID: id.rawValue) { break }
                    }
                }
            }
            return try JSONBody.response(GroupImport.Imported(id: id.rawValue, name: plan.name, todos: plan.todos.count,
                                                              assigneesCleared: plan.assigneesCleared), status: .created)
        }
        /// A membership change: authenticate, apply (committed with its outbox row), forget and
        /// announce the group's cached membership answers, relay, 204.
        func change(_ apply: @escaping @Sendable (GroupStore.Actor, GroupID, Request, APIRequestContext) async throws -> Void)
            -> @Sendable (Request, APIRequestContext) async throws -> Response {
            { request, context in
                let actor = try await actor(request, tokens)
                let group = try groupID(context)
                try await apply(actor, group, request, context)
                membershipCache?.forget(group: group.rawValue)
                await announcer?.groupChanged(group.rawValue)
                await relay.relay(groupID: group.rawValue)
                return Response(status: .noContent)
            }
        }
        routes.delete(":id", use: change { actor, group, _, _ in
            try await groups.deleteGroup(group, actor: actor)
        })
        routes.post(":id/members", use: change { actor, group, request, context in
            let (username, role) = try await memberBody(request, context)
            try await groups.addMember(group, username: username, role: role, actor: actor)
        })
        routes.patch(":id/members/role", use: change { actor, group, request, context in
            let (username, role) = try await memberBody(request, context)
            try await groups.changeRole(group, username: username, to: role, actor: actor)
        })
        routes.delete(":id/members/:username", use: change { actor, group, _, context in
            // The path segment as sent, percent-decoded: " bob" arrives as "%20bob" and is then
            // trimmed like a username in a body.
            let raw = context.parameters.get("username") ?? ""
            try await groups.removeMember(group, username: raw.removingPercentEncoding ?? raw, actor: actor)
        })
    }

    public static func addCommandRoutes(to router: Router<APIRequestContext>, intake: CommandIntake, tokens: AccessTokens,
                                        limits: CommandAPILimits) {
        router.post("/api/v1/command") { request, context in
            let user = try await tokens.authenticate(request)
            try limits.check(limits.commandsPerUser, user.id)
            let body = try await request.collectLimitedBody(context: context)
            let accepted = try await intake.accept(body: Data(buffer: body), idempotencyKey: request.headers[.idempotencyKey], user: user)
            return JSONBody.response(json: accepted.jsonBytes(), status: .accepted)
        }
        router.get("/api/v1/commands/:command_id") { request, context in
            let user = try await tokens.authenticate(request)
            return try JSONBody.response(try await intake.status(commandID: context.parameters.get("command_id") ?? "", user: user))
        }
    }

    // MARK: - Helpers

    struct CreatedGroup: Encodable {
        let id: String
        let name: String
    }

    static func actor(_ request: Request, _ tokens: AccessTokens) async throws -> GroupStore.Actor {
        let user = try await tokens.authenticate(request)
        return GroupStore.Actor(userID: user.userID, username: user.username)
    }

    static func groupID(_ context: APIRequestContext) throws -> GroupID {
        do { return try GroupID(context.parameters.get("id") ?? "") } catch { throw APIError.badRequest("group id: \(error)") }
    }

    static func object(_ request: Request, _ context: APIRequestContext) async throws -> FieldReader {
        let body = try await request.collectLimitedBody(context: context)
        return FieldReader(try field { try JSONValue.object(from: Data(buffer: body)) })
    }

    static func credentials(_ request: Request, _ context: APIRequestContext) async throws -> AuthService.Credentials {
        var fields = try await object(request, context)
        let username = try field { try fields.requiredString("username") }
        let password = try field { try fields.requiredString("password") }
        try field { try fields.rejectUnknown(context: "credentials") }
        return AuthService.Credentials(username: username, password: password)
    }

    static func memberBody(_ request: Request, _ context: APIRequestContext) async throws -> (String, GroupRole) {
        var fields = try await object(request, context)
        let username = try field { try fields.requiredString("username") }
        let roleName = try field { try fields.requiredString("role") }
        try field { try fields.rejectUnknown(context: "a member") }
        guard let role = GroupRole(rawValue: roleName) else { throw APIError.badRequest("role: must be owner, admin or member") }
        return (username, role)
    }

    /// Runs a field check, turning its `FieldError` into a 400.
    static func field<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as FieldError { throw error.apiError }
    }
}
