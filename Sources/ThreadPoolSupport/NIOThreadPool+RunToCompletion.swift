import NIOPosix

extension NIOThreadPool {
    /// Like `runIfActive`, but a task cancelled while waiting does not drop the work (NIO skips
    /// work whose task was cancelled before it started, which would leave subscriptions open or
    /// leak a leased connection during shutdown): it throws only when the pool is shut down.
    public func runToCompletion<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            submit { state in
                switch state {
                case .active: continuation.resume(with: Result(catching: body))
                case .cancelled: continuation.resume(throwing: NIOThreadPoolError.ThreadPoolInactive())
                }
            }
        }
    }
}
