import Foundation
import Synchronization
import Testing
@testable import NATS

@Suite("NATS wrapper, without a server")
struct NATSUnitTests {
    @Test func credentialsAreRedactedFromURLs() {
        #expect(redacted("nats://user:secret@host:4222") == "nats://user:***@host:4222")
        #expect(redacted("nats://host:4222") == "nats://host:4222")
        #expect(redacted("nats://token@host:4222") == "nats://token@host:4222")
        #expect(redacted("nats://u:a@h1:4222,nats://u:b@h2:4222") == "nats://u:***@h1:4222,nats://u:***@h2:4222", "every server's")
    }

    @Test func onlyFailuresThatClearOnTheirOwnAreTransient() {
        #expect(NATSError(kind: .timeout, operation: "x", message: "").isTransient)
        #expect(NATSError(kind: .noResponders, operation: "x", message: "").isTransient)
        #expect(NATSError(kind: .other, operation: "x", message: "", jetStreamCode: 10008).isTransient, "JetStream temporarily unavailable")
        #expect(!NATSError(kind: .streamNotFound, operation: "x", message: "", jetStreamCode: 10059).isTransient)
        #expect(!NATSError(kind: .wrongLastSequence, operation: "x", message: "", jetStreamCode: 10071).isTransient)
        #expect(!NATSError(kind: .invalidArgument, operation: "x", message: "").isTransient)
    }

    @Test func transientFailuresAreRetriedWithinTheWindowAndOthersAreNot() async throws {
        let tries = Mutex(0)
        let value = try await retryingTransientFailures(window: .seconds(5)) {
            let attempt = tries.withLock { $0 += 1; return $0 }
            if attempt < 3 { throw NATSError(kind: .other, operation: "get stream", message: "", jetStreamCode: 10008) }
            return attempt
        }
        #expect(value == 3, "two transient failures, then the answer")

        tries.withLock { $0 = 0 }
        await #expect(throws: NATSError.self) {
            try await retryingTransientFailures(window: .seconds(5)) { () async throws -> Int in
                tries.withLock { $0 += 1 }
                throw NATSError(kind: .streamNotFound, operation: "get stream", message: "", jetStreamCode: 10059)
            }
        }
        #expect(tries.withLock { $0 } == 1, "a permanent failure is not tried again")

        tries.withLock { $0 = 0 }
        do {
            _ = try await retryingTransientFailures(window: .milliseconds(250)) { () async throws -> Int in
                tries.withLock { $0 += 1 }
                throw NATSError(kind: .timeout, operation: "get stream", message: "no answer")
            }
            Issue.record("a failure that never clears must end the retries")
        } catch let error as NATSError {
            #expect(error.kind == .timeout)
            #expect(error.message.contains("tries in"), "the error says it was retried: \(error.message)")
        }
        #expect((2...3).contains(tries.withLock { $0 }), "tries within 250 ms at 100 and 200 ms pauses")

        tries.withLock { $0 = 0 }
        await #expect(throws: NATSError.self) {
            try await retryingTransientFailures(window: .zero) { () async throws -> Int in
                tries.withLock { $0 += 1 }
                throw NATSError(kind: .timeout, operation: "get stream", message: "")
            }
        }
        #expect(tries.withLock { $0 } == 1, "a zero window fails at once")
    }

    @Test func aConnectionThatNamesAUserGetsItsOwnInbox() {
        #expect(inboxPrefix(for: "nats://streamer:pw@host:4222") == "_INBOX_streamer")
        #expect(inboxPrefix(for: "tls://data-sink:pw@a:4222,tls://data-sink:pw@b:4222") == "_INBOX_data-sink")
        #expect(inboxPrefix(for: "nats://host:4222") == nil)
        #expect(inboxPrefix(for: "nats://we.ird:pw@host:4222") == nil, "a user that is no subject token gets the default")
    }

    @Test func durationsConvertToLibnatsUnits() {
        #expect(Duration.seconds(2).milliseconds == 2000)
        #expect(Duration.microseconds(10).milliseconds == 1, "a positive wait never rounds down to 'no wait'")
        #expect(Duration.zero.milliseconds == 0)
        #expect(Duration.milliseconds(1500).nanoseconds == 1_500_000_000)
    }

    @Test func outgoingMessagesCarryTheJetStreamHeaders() {
        let message = OutgoingMessage(subject: "s", payload: Data(), msgID: "cmd-1", expectedLastSubjectSequence: 0)
        #expect(message.headers[JetStreamHeader.msgID] == "cmd-1")
        #expect(message.headers[JetStreamHeader.expectedLastSubjectSequence] == "0", "0 must be sent, not treated as unset")
        #expect(OutgoingMessage(subject: "s", payload: Data()).headers.isEmpty)
    }

    @Test func semaphoreBoundsAndServesWaitersInOrder() async {
        let semaphore = AsyncSemaphore(permits: 3)
        await semaphore.acquire(3)
        #expect(semaphore.availablePermits == 0)
        let order = Recorder()
        await withTaskGroup(of: Void.self) { group in
            for waiter in 0..<3 {
                group.addTask {
                    await semaphore.acquire(2)
                    order.values.withLock { $0.append(waiter) }
                    semaphore.release(2)
                }
                // Let each waiter queue before the next starts.
                while semaphore.waitingCount < waiter + 1 { await Task.yield() }
            }
            semaphore.release(3)
        }
        #expect(order.values.withLock { $0 } == [0, 1, 2])
        #expect(semaphore.availablePermits == 3)
    }

    @Test func semaphoreNeverAsksForMoreThanItsCapacity() async {
        let semaphore = AsyncSemaphore(permits: 2)
        await semaphore.acquire(10)
        #expect(semaphore.availablePermits == 0)
    }
}

final class Recorder: Sendable {
    let values = Mutex<[Int]>([])
}
