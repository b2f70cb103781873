import NIOPosix

/// Runs blocking libnats calls on dedicated threads, never on the Swift concurrency pool (two
/// threads on this machine: one blocked `Fetch` there would stall half the process).
final class BlockingExecutor: Sendable {
    private let pool: NIOThreadPool

    init(threads: Int) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
