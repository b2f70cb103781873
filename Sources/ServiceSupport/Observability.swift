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
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: created))
            existing = created
            return created
        }
    }
}
