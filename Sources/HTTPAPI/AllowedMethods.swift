import Hummingbird
import HTTPTypes
import Synchronization

/// Which methods each route path answers, so that a request with another method on a known path
/// gets 405 with an `Allow` header (RFC 9110 §15.5.6) instead of a 404 that says the path does
/// not exist. Filled once, after every route is registered (`load(_:)`); read by `ErrorMiddleware`.
public final class AllowedMethods: Sendable {
    private let table = Mutex<[(segments: [Substring], methods: [HTTPRequest.Method])]>([])

    public init() {}

    /// Takes the router's routes (Hummingbird spells a parameter `{name}`).
    public func load<Context>(_ routes: [Router<Context>.RouteDescription]) {
        var byPath: [String: [HTTPRequest.Method]] = [:]
        for route in routes { byPath["\(route.path)", default: []].append(route.method) }
        table.withLock { table in
            table = byPath.map { (path, methods) in
                (path.split(separator: "/"), methods.sorted { $0.rawValue < $1.rawValue })
            }
        }
    }

    /// Adds a route served outside the router (the streamer's `GET /events`).
    public func add(_ method: HTTPRequest.Method, _ path: String) {
        table.withLock { $0.append((path.split(separator: "/"), [method])) }
    }

    /// The methods `path` answers (empty: no such path). As in the router's trie, a literal
    /// segment wins over a parameter (`/members/role` is the role route, never `{username}`).
    public func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/")
        return table.withLock { table in
            let matches = table.compactMap { entry -> (score: [Bool], methods: [HTTPRequest.Method])? in
                guard entry.segments.count == segments.count,
                      zip(entry.segments, segments).allSatisfy({ $0.hasPrefix("{") || $0 == $1 }) else { return nil }
                return (entry.segments.map { !$0.hasPrefix("{") }, entry.methods)
            }
            guard let best = matches.map(\.score).max(by: { $0.lexicographicallyPrecedes($1) { !$0 && $1 } }) else { return [] }
            return matches.filter { $0.score == best }.flatMap(\.methods)
        }
    }
}
