import Foundation
import Synchronization

/// A service binary started by a test, so the test can `kill -9` it.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    let name: String
    private let reaped = Mutex(false)

    /// The path of the `todo` executable: next to the test bundle, unless `PIPELINE_BINARY` names another.
    static var todoBinary: String {
        if let explicit = ProcessInfo.processInfo.environment["PIPELINE_BINARY"] { return explicit }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundle.appendingPathComponent("todo").path
    }

    init(name: String, arguments: [String], environment: [String: String], log: String) throws {
        self.name = name
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)
        let argv = ([Self.todoBinary] + arguments).map { strdup($0) } + [nil]
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, Self.todoBinary, &fileActions, nil, argv, envp)
        guard status == 0 else { throw SpawnFailed(binary: Self.todoBinary, status: status) }
        self.pid = pid
    }

    struct SpawnFailed: Error, CustomStringConvertible {
        let binary: String
        let status: Int32
        var description: String { "could not start \(binary) (\(status)); build it with `swift build`" }
    }

    func signal(_ signal: Int32) {
        if !reaped.withLock({ $0 }) { kill(pid, signal) }
    }

    /// A test that fails half-way must not leave services running.
    deinit {
        if !reaped.withLock({ $0 }) {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    /// Waits for the process to end (on a thread of its own); returns its exit status, or
    /// 128 + signal when a signal ended it.
    func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread {
                var status: Int32 = 0
                while waitpid(self.pid, &status, 0) == -1 && errno == EINTR {}
                self.reaped.withLock { $0 = true }
                let signal = status & 0x7F
                continuation.resume(returning: signal == 0 ? (status >> 8) & 0xFF : 128 + signal)
            }.start()
        }
    }
}
