import Foundation
import HTTPAPI
import Hummingbird
import Postgres
import Prometheus
import Testing
@testable import Streamer

@Suite("The streamer's OpenAPI document and its routes")
struct StreamerOpenAPITests {
    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let configuration = try StreamerConfiguration(environment: ["JWT_PUBLIC_KEYS": TokenSigningKey.generate(kid: "k1").environment["JWT_PUBLIC_KEYS"]!])
        let router = StreamerApplication.router(
            configuration: configuration, store: ReadStore(pool: PostgresPool(url: "postgres://nobody@127.0.0.1:1/none")),
            tokens: await AccessTokens(verificationKeys: configuration.verificationKeys), limits: ReadLimits(configuration: configuration),
            presence: Presence())
        // GET /events is served by the connection handler, ahead of the router.
        let routes = Set(router.routes.map { "\($0.method) \($0.path)" } + ["GET \(SSEConnectionHandler.path)"])
        let documented = OpenAPIDocument.streamer.operations
        #expect(routes.subtracting(documented).sorted() == [], "routes the document lacks")
        #expect(documented.subtracting(routes).sorted() == [], "documented routes the router lacks")
        #expect(routes.contains("GET /api/v1/todos"))
    }
}
