import Contracts
import Crypto
import Foundation
import Logging
import Metrics
import NATS
import ServiceSupport
import Sharding

/// Turns claimed reminders into `fire-reminder` commands (DESIGN §9).
///
/// Exactly once rests on three things: a replica fires only the rows it claimed (`SKIP LOCKED`);
/// the command's id and `Nats-Msg-Id` come from the reminder and its instant, so a second publish
/// of the same firing (a claim that expired, a replica that died after publishing) is dropped by
/// JetStream within its duplicate window and by the engine after it; and the engine emits
/// `reminder.fired` only while that reminder is still set for that instant, then forgets it.
enum ReminderFiring {
    static let prefix = "fire-"

    /// The command and message id of one firing: `fire-` and 128 bits of SHA-256 over the
    /// reminder's identity, its instant and its attempt (ids are at most 128 characters; the parts
    /// may be longer). The attempt is 0 unless the engine refused an earlier one as not yet due.
    static func commandID(_ reminder: DueReminder) -> String {
        commandID(groupID: reminder.groupID, todoID: reminder.todoID, userID: reminder.userID, fireAt: reminder.fireAt,
                  attempt: reminder.attempt)
    }

    static func commandID(groupID: String, todoID: String, userID: String, fireAt: Date, attempt: Int) -> String {
        let millis = Int64((fireAt.timeIntervalSince1970 * 1000).rounded())
        let digest = SHA256.hash(data: Data("\(groupID)\u{0}\(todoID)\u{0}\(userID)\u{0}\(millis)\u{0}\(attempt)".utf8))
        return prefix + digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Late: the scheduler fires it more than `lateAfter` after its time (it was down, or behind).
    static func isLate(_ reminder: DueReminder, now: Date, lateAfter: Duration) -> Bool {
        now.timeIntervalSince(reminder.fireAt) > lateAfter.seconds
    }

    static func command(for reminder: DueReminder, now: Date, lateAfter: Duration) -> TodoCommand {
        TodoCommand(commandID: commandID(reminder), action: .fireReminder, groupID: reminder.groupID, todoID: reminder.todoID,
                    actorUserID: reminder.userID, actorName: reminder.actorName, issuedAt: now,
                    fireAt: reminder.fireAt, late: isLate(reminder, now: now, lateAfter: lateAfter) ? true : nil)
    }

    static func message(for reminder: DueReminder, now: Date, lateAfter: Duration) throws -> OutgoingMessage {
        let command = command(for: reminder, now: now, lateAfter: lateAfter)
        return OutgoingMessage(subject: try GroupSubject.command(GroupID(reminder.groupID)).subject,
                               payload: try MessageCoding.encoder().encode(command), msgID: command.commandID)
    }
}

/// The firing loop of one replica: claim what is due, publish its commands, hand back what could
/// not be published; look again every `pollInterval` (at once while a full batch came back).
struct ReminderFirer: Sendable {
    let store: SchedulerStore
    let jetStream: JetStream
    let configuration: SchedulerConfiguration
    let logger: Logger

    private let fired = Counter(label: "scheduler_fire_commands_total")
    private let firedLate = Counter(label: "scheduler_fire_commands_late_total")
    private let publishFailures = Counter(label: "scheduler_publish_failures_total")
    /// From a reminder's instant to its command being stored in COMMANDS.
    private let lag = Timer(label: "scheduler_fire_lag_seconds")

    init(store: SchedulerStore, jetStream: JetStream, configuration: SchedulerConfiguration, logger: Logger) {
        self.store = store
        self.jetStream = jetStream
        self.configuration = configuration
        self.logger = logger
    }

    func run() async {
        var lastPurge = ContinuousClock.now
        while !Task.isCancelled {
            var full = false
            do {
                full = try await fireDue() >= configuration.claimBatch
            } catch {
                logger.warning("firing reminders failed; trying again", metadata: ["error": "\(error)"])
            }
            if ContinuousClock.now - lastPurge > .seconds(60) {
                lastPurge = .now
                _ = try? await store.purgeEnded(before: Date().addingTimeInterval(-configuration.tombstoneRetention.seconds))
            }
            if !full { try? await Task.sleep(for: configuration.pollInterval) }
        }
    }

    /// One round: returns how many reminders were claimed.
    func fireDue(now: Date = Date()) async throws -> Int {
        let due = try await store.claimDue(now: now, limit: configuration.claimBatch, lease: configuration.claimLease)
        guard !due.isEmpty else { return 0 }
        var messages: [OutgoingMessage] = []
        var sent: [DueReminder] = []
        for reminder in due {
            do {
                messages.append(try ReminderFiring.message(for: reminder, now: now, lateAfter: configuration.lateAfter))
                sent.append(reminder)
            } catch {
                // An id that cannot make a subject never came from the engine; nothing to fire.
                logger.error("reminder cannot be fired", metadata: ["group_id": "\(reminder.groupID)", "error": "\(error)"])
            }
        }
        let results = await jetStream.publishBatch(messages)
        let stored = Date()
        var failed: [DueReminder] = []
        for (reminder, result) in zip(sent, results) {
            switch result {
            case .success:
                fired.increment()
                if ReminderFiring.isLate(reminder, now: now, lateAfter: configuration.lateAfter) { firedLate.increment() }
                lag.recordSeconds(max(0, stored.timeIntervalSince(reminder.fireAt)))
            case .failure(let error):
                failed.append(reminder)
                if failed.count == 1 { logger.warning("publishing fire-reminder failed; it will be retried", metadata: ["error": "\(error)"]) }
            }
        }
        if !failed.isEmpty {
            publishFailures.increment(by: failed.count)
            try await store.release(failed)
        }
        return due.count
    }
}
