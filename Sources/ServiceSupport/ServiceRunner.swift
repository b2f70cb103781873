import Hummingbird
import Logging
import NATS
import Prometheus
import ServiceLifecycle

/// Runs a worker service next to its operational HTTP listener until SIGTERM/SIGINT; the worker
/// gets the graceful-shutdown signal first and finishes what it has in hand.
public enum ServiceRunner {
    public static func run(
        name: String, worker: any Service, health: ListenAddressLike, checks: [ReadinessCheck],
        registry: PrometheusCollectorRegistry, logger: Logger, gracePeriod: Duration = .seconds(25)
    ) async throws {
        let http = OperationalRoutes.application(host: health.host, port: health.port, serverName: name, checks: checks,
                                                 registry: registry, logger: logger)
        // Graceful shutdown runs in reverse order: the worker stops taking work and finishes
        // its batch first, while /healthz and /metrics still answer; then the listener stops.
        try await run(name: name, services: [("\(name)-http", http), (name, worker)], logger: logger, gracePeriod: gracePeriod)
    }

    /// Runs `services` (started in order, shut down gracefully in reverse order) until SIGTERM/SIGINT
    /// or until one of them ends.
    public static func run(name: String, services: [(name: String, service: any Service)], logger: Logger,
                           gracePeriod: Duration = .seconds(25)) async throws {
        TerminationSignal.install()
        var configuration = ServiceGroupConfiguration(
            services: services.map {
                .init(service: $0.service, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: $0.name)
            },
            logger: logger)
        configuration.maximumGracefulShutdownDuration = gracePeriod
        let group = ServiceGroup(configuration: configuration)
        try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try await group.run()
                return true
            }
            tasks.addTask {
                await TerminationSignal.wait()
                if TerminationSignal.value != 0 {
                    logger.info("termination signal received; shutting down gracefully", metadata: ["signal": "\(TerminationSignal.value)"])
                    await group.triggerGracefulShutdown()
                }
                return false
            }
            // Until the group itself ends; then stop the watcher.
            while let groupEnded = try await tasks.next() {
                if groupEnded {
                    tasks.cancelAll()
                    break
                }
            }
        }
    }

    /// Connects to NATS, retrying with backoff for up to `patience` (a server still starting),
    /// then failing with the last error.
    public static func connectNATS(url: String, name: String, caFile: String? = nil, logger: Logger,
                                   patience: Duration = .seconds(60)) async throws -> NATSConnection {
        var options = NATSConnection.Options(url: url, name: name)
        options.caFile = caFile
        return try await connectNATS(options: options, logger: logger, patience: patience)
    }

    public static func connectNATS(options: NATSConnection.Options, logger: Logger, patience: Duration = .seconds(60)) async throws -> NATSConnection {
        let deadline = ContinuousClock.now + patience
        let backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await NATSConnection.connect(options)
            } catch {
                guard ContinuousClock.now < deadline, TerminationSignal.value == 0 else { throw error }
                logger.warning("NATS not reachable yet; retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                try await Task.sleep(for: backoff.delay(attempt: attempt))
            }
        }
    }
}

/// host + port (Contracts.ListenAddress conforms).
public protocol ListenAddressLike: Sendable {
    var host: String { get }
    var port: Int { get }
}
