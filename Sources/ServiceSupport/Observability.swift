import Logging
import Metrics
import Prometheus
import Synchronization

/// Bootstraps logging (JSON lines on stderr) and metrics (Prometheus) once per process.
public enum Observability {
    private static let registry = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Returns the process's registry, bootstrapping on first call.
    @discardableResult
    public static func bootstrap() -> PrometheusCollectorRegistry {
        registry.withLock { existing in
            if let existing { return existing }
            let created = PrometheusCollectorRegistry()
            LoggingSystem.bootstrap(JSONLogHandler.init)
            var factory = PrometheusMetricsFactory(registry: created)
            // Prometheus names allow [a-zA-Z0-9_:] only; swift-metrics labels (Hummingbird's
            // `http.server.request.duration`, `http.route`) use dots.
            factory.nameAndLabelSanitizer = { name, labels in
                (sanitize(name), labels.map { (sanitize($0.0), $0.1) })
            }
            MetricsSystem.bootstrap(factory)
            existing = created
            return created
        }
    }

    static func sanitize(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" ? $0 : "_" })
    }
}
