import NIOPosix
import ThreadPoolSupport

/// Runs blocking libnats calls on dedicated threads, never on the Swift concurrency pool (two
/// threads on this machine: one blocked `Fetch` there would stall half the process).
///
/// Work is not cancellable: once submitted it runs, even if the awaiting task is cancelled, so
/// cleanup (closing a subscription, acknowledging a finished batch) still happens during shutdown.
final class BlockingExecutor: Sendable {
    private let pool: NIOThreadPool

    init(threads: Int) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runToCompletion(body)
    }

    /// Queues `body` and returns at once, without waiting for it to run: on a one-thread executor,
    /// bodies run in the order they were submitted. `body` is called with `false`, instead of
    /// running, when the executor is shut down.
    func submit(_ body: @escaping @Sendable (_ running: Bool) -> Void) {
        pool.submit { state in body(state == .active) }
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
