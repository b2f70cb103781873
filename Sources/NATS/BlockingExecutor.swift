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

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
