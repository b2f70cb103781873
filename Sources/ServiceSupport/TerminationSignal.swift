import Foundation
import Synchronization

/// SIGTERM/SIGINT → graceful shutdown. A plain signal handler only sets a flag (the one thing a
/// handler may safely do); a task watches the flag. This works whichever thread the kernel picks
/// to deliver the signal to, unlike a dispatch signal source on Linux (a signalfd, which only
/// sees the signal if every thread blocks it; libnats' threads do not).
public enum TerminationSignal {
    private static let received = Atomic<Int32>(0)

    /// Installs the handler for SIGTERM and SIGINT (idempotent).
    public static func install() {
        for signal in [SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in TerminationSignal.received.store(number, ordering: .relaxed) }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signal, &action, nil)
        }
    }

    /// The signal received so far (0: none).
    public static var value: Int32 { received.load(ordering: .relaxed) }

    /// Returns once a termination signal arrived (or the task is cancelled).
    public static func wait() async {
        while value == 0 && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
