import Foundation
import Hummingbird

/// The OpenAPI 3.1 documents of the HTTP services (`Sources/HTTPAPI/OpenAPI/<service>.json`): the
/// one description of every route, parameter, body and error, maintained by hand next to the
/// code. Each service serves its own at `GET /openapi.json`; a unit test per service compares the
/// document's operations with the router's routes, and schemathesis (`make test-fuzz-api`) checks
/// the running services' answers against it.
public enum OpenAPIDocument {
    case commandAPI
    case streamer

    var fileName: String {
        switch self {
        case .commandAPI: "command-api"
        case .streamer: "streamer"
        }
    }

    /// The document's bytes, read once from the module's resources.
    public var bytes: ByteBuffer {
        switch self {
        case .commandAPI: Self.commandAPIBytes
        case .streamer: Self.streamerBytes
        }
    }

    private static let commandAPIBytes = load("command-api")
    private static let streamerBytes = load("streamer")

    private static func load(_ name: String) -> ByteBuffer {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "OpenAPI"),
              let data = try? Data(contentsOf: url) else {
            fatalError("the OpenAPI document \(name).json is missing from HTTPAPI's resource bundle")
        }
        return ByteBuffer(bytes: data)
    }

    /// `GET /openapi.json`.
    public func addRoute<Context: RequestContext>(to router: Router<Context>) {
        let body = bytes
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-cache"],
                     body: .init(byteBuffer: body))
        }
    }

    /// Every operation of the document as "METHOD /path" (parameters as `{name}`, as Hummingbird
    /// describes its routes), for comparing with a router's routes.
    public var operations: Set<String> {
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any],
              let paths = object["paths"] as? [String: Any] else { return [] }
        var operations: Set<String> = []
        for (path, item) in paths {
            guard let item = item as? [String: Any] else { continue }
            for method in item.keys where ["get", "put", "post", "delete", "patch", "head", "options"].contains(method) {
                operations.insert("\(method.uppercased()) \(path)")
            }
        }
        return operations
    }
}
