import Foundation
import Hummingbird
import Logging
import Prometheus

/// `GET /healthz` (the process is alive), `GET /readyz` (every dependency answers; 503 with the
/// failing checks otherwise) and `GET /metrics` (Prometheus text), for every service, on its
/// internal listener (the Gateway routes only the public ports; probes and Prometheus use this one).
/// The public ports of command-api and the streamer answer `/healthz` only.
public enum OperationalRoutes {
    public static func addLiveness<Context: RequestContext>(to router: Router<Context>) {
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
    }

    public static func add<Context: RequestContext>(
        to router: Router<Context>, checks: [ReadinessCheck], registry: PrometheusCollectorRegistry
    ) {
        addLiveness(to: router)
        router.get("/readyz") { _, _ in
            var results: [(String, Bool)] = []
            for check in checks { results.append((check.name, await check.check())) }
            let ready = results.allSatisfy(\.1)
            let body = "{\"status\":\"\(ready ? "ready" : "not ready")\",\"checks\":{"
                + results.map { "\"\($0.0)\":\"\($0.1 ? "ok" : "failing")\"" }.joined(separator: ",") + "}}"
            return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }

    /// A small HTTP listener with only these routes, for services without an API of their own.
    public static func application(
        host: String, port: Int, serverName: String, checks: [ReadinessCheck], registry: PrometheusCollectorRegistry,
        logger: Logger
    ) -> some ApplicationProtocol {
        let router = Router()
        add(to: router, checks: checks, registry: registry)
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: serverName),
                           logger: logger)
    }
}
