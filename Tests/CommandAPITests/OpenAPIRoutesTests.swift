import CommandAPI
import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import HummingbirdTesting
import Logging
import Postgres
import Prometheus
import Testing

@Suite("command-api's OpenAPI document and its router")
struct CommandAPIOpenAPITests {
    static func application() async throws -> CommandAPIApplication {
        let configuration = try CommandAPIConfiguration(environment: TokenSigningKey.generate(kid: "k1").environment.merging(["BCRYPT_COST": "4"]) { $1 })
        // The pool connects lazily: building the router talks to no server.
        return await CommandAPIApplication(configuration: configuration, pool: PostgresPool(url: "postgres://nobody@127.0.0.1:1/none"),
                                           publisher: RecordingPublisher(), checks: [], registry: PrometheusCollectorRegistry(),
                                           logger: Logger(label: "test"))
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let api = try await Self.application()
        let routes = Set(api.router.routes.map { "\($0.method) \($0.path)" })
        let documented = OpenAPIDocument.commandAPI.operations
        #expect(routes.subtracting(documented).sorted() == [], "routes the document lacks")
        #expect(documented.subtracting(routes).sorted() == [], "documented routes the router lacks")
        #expect(routes.contains("POST /api/v1/command"))
        await api.passwords.shutdown()
    }

    @Test func theDocumentIsServed() async throws {
        let api = try await Self.application()
        try await Application(router: api.router).test(.router) { client in
            try await client.execute(uri: "/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let document = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                #expect(document?["openapi"] as? String == "3.1.0")
                #expect((document?["info"] as? [String: Any])?["title"] as? String == "command-api")
            }
        }
        await api.passwords.shutdown()
    }
}

@Suite("The OpenAPI document states the limits the code enforces")
struct OpenAPILimitsTests {
    func schemas() throws -> [String: [String: Any]] {
        let document = try JSONSerialization.jsonObject(with: Data(buffer: OpenAPIDocument.commandAPI.bytes)) as? [String: Any]
        let components = document?["components"] as? [String: Any]
        return try #require(components?["schemas"] as? [String: [String: Any]])
    }

    @Test(arguments: [("Title", TextRules.title), ("Notes", TextRules.notes), ("Label", TextRules.label),
                      ("GroupName", TextRules.groupName)])
    func textLimits(_ name: String, _ rule: TextRule) throws {
        let schema = try #require(try schemas()[name])
        #expect(schema["maxLength"] as? Int == rule.maxCharacters, "\(name).maxLength")
        #expect(schema["x-max-bytes"] as? Int == rule.maxBytes, "\(name).x-max-bytes")
    }

    @Test func labelsPerTodoAndTheOtherCaps() throws {
        let command = try #require(try schemas()["Command"]?["oneOf"] as? [[String: Any]])
        for variant in command {
            guard let properties = variant["properties"] as? [String: Any], let labels = properties["labels"] as? [String: Any],
                  let list = (labels["anyOf"] as? [[String: Any]])?.first else { continue }
            #expect(list["maxItems"] as? Int == TextRules.maxLabelsPerTodo)
        }
        let password = try #require((try schemas()["Credentials"]?["properties"] as? [String: Any])?["password"] as? [String: Any])
        #expect(password["maxLength"] as? Int == TextRules.password.maxCharacters)
        #expect(password["minLength"] as? Int == PasswordHasher.lengthRange.lowerBound)
    }
}

@Suite("The OpenAPI document's commands carry the declared todo fields")
struct OpenAPITodoFieldTests {
    @Test func eachCommandVariantListsExactlyTheFieldsItsActionAccepts() throws {
        let document = try JSONSerialization.jsonObject(with: Data(buffer: OpenAPIDocument.commandAPI.bytes)) as? [String: Any]
        let schemas = (document?["components"] as? [String: Any])?["schemas"] as? [String: [String: Any]]
        let variants = try #require(schemas?["Command"]?["oneOf"] as? [[String: Any]])
        let envelope: Set<String> = ["action", "group_id", "todo_id", "expected_version", "remind_at", "timezone"]
        for variant in variants {
            let properties = try #require(variant["properties"] as? [String: Any])
            let action = try #require(CommandAction(rawValue: (properties["action"] as? [String: Any])?["const"] as? String ?? ""))
            #expect(Set(properties.keys).subtracting(envelope) == Set(TodoField.accepted(by: action).map(\.name)), "\(action)")
        }
    }
}
