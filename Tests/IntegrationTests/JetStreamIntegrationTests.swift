import Foundation
import Logging
import NATS
import ServiceSupport
import Synchronization
import Testing

@Suite("JetStream through the wrapper, against nats-server")
struct JetStreamIntegrationTests {
    @Test func publishAndConsumeRoundTrip() async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        var sent: [PublishAck] = []
        for index in 1...3 {
            var headers = NATSHeaders()
            headers.add("X-Index", String(index))
            sent.append(try await connection.jetStream.publish(OutgoingMessage(
                subject: stream.subject("orders"), payload: Data("message \(index)".utf8), msgID: "id-\(index)", headers: headers)))
        }
        #expect(sent.map(\.sequence) == [1, 2, 3])
        #expect(sent.allSatisfy { $0.stream == stream.name && !$0.duplicate })

        let consumer = try await connection.jetStream.pullConsumer(stream: stream.name, config: ConsumerConfig(durable: "reader"))
        let messages = try await consumer.fetch(batch: 10, expires: .seconds(2))
        #expect(messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["message 1", "message 2", "message 3"])
        #expect(messages.map(\.subject) == Array(repeating: stream.subject("orders"), count: 3))
        #expect(messages.map { $0.headers["X-Index"] } == ["1", "2", "3"])
        #expect(messages.map { $0.headers[JetStreamHeader.msgID] } == ["id-1", "id-2", "id-3"])
        #expect(messages.map(\.metadata.streamSequence) == [1, 2, 3])
        #expect(messages.map(\.metadata.deliveryCount) == [1, 1, 1])
        #expect(messages.last?.metadata.pending == 0)
        #expect(messages.first?.metadata.stream == stream.name)
        #expect(messages.first?.metadata.consumer == "reader")
        try await messages.ackAll()
        try await connection.ping()

        #expect(try await consumer.fetch(batch: 10, expires: .milliseconds(300)).isEmpty)
        #expect(try await stream.ackFloor(of: "reader", reaching: 3) == 3)
        let info = try await consumer.info()
        #expect(info.ackPending == 0)
        #expect(info.pending == 0)
        await consumer.close()
        await stream.delete()
        await connection.drain()
    }

    @Test func sameMessageIDTwiceStoresOneMessage() async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        let first = try await connection.jetStream.publish(stream.subject("a"), Data("one".utf8), msgID: "cmd-1")
        let second = try await connection.jetStream.publish(stream.subject("a"), Data("one again".utf8), msgID: "cmd-1")
        #expect(!first.duplicate)
        #expect(second.duplicate)
        #expect(second.sequence == first.sequence)
        #expect(try await connection.jetStream.streamInfo(stream.name).messages == 1)
        await stream.delete()
        await connection.drain()
    }

    @Test func expectedLastSubjectSequenceConflictIsReported() async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        let subject = stream.subject("group.g1")
        // 0 means "no message on this subject yet": accepted once…
        let first = try await connection.jetStream.publish(subject, Data("v1".utf8), msgID: "e1", expectedLastSubjectSequence: 0)
        // …and rejected when the subject already has one.
        await #expect {
            try await connection.jetStream.publish(subject, Data("v1'".utf8), msgID: "e1-bis", expectedLastSubjectSequence: 0)
        } throws: { error in
            (error as? NATSError)?.kind == .wrongLastSequence && (error as? NATSError)?.jetStreamCode == 10071
        }
        // Another subject's messages do not count for this subject.
        _ = try await connection.jetStream.publish(stream.subject("group.g2"), Data("other".utf8), msgID: "o1")
        let second = try await connection.jetStream.publish(subject, Data("v2".utf8), msgID: "e2", expectedLastSubjectSequence: first.sequence)
        #expect(second.sequence == first.sequence + 2)
        await #expect {
            try await connection.jetStream.publish(subject, Data("stale".utf8), msgID: "e3", expectedLastSubjectSequence: first.sequence)
        } throws: { ($0 as? NATSError)?.kind == .wrongLastSequence }
        #expect(try await connection.jetStream.streamInfo(stream.name).messages == 3)
        await stream.delete()
        await connection.drain()
    }

    @Test func nakedMessageIsRedeliveredWithAHigherDeliveryCount() async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        _ = try await connection.jetStream.publish(stream.subject("x"), Data("retry me".utf8), msgID: "m")
        let consumer = try await connection.jetStream.pullConsumer(
            stream: stream.name, config: ConsumerConfig(durable: "worker", ackWait: .seconds(30), maxDeliver: 5))

        let first = try #require(try await consumer.fetch(batch: 1, expires: .seconds(2)).first)
        #expect(first.metadata.deliveryCount == 1)
        try await first.nak()
        let second = try #require(try await consumer.fetch(batch: 1, expires: .seconds(5)).first)
        #expect(second.metadata.deliveryCount == 2)
        #expect(second.metadata.streamSequence == first.metadata.streamSequence)
        #expect(second.payload == first.payload)

        // A delayed nak holds the message back, then delivers it again.
        try await second.nak(delay: .seconds(2))
        #expect(try await consumer.fetch(batch: 1, expires: .milliseconds(200)).isEmpty)
        let third = try #require(try await consumer.fetch(batch: 1, expires: .seconds(10)).first)
        #expect(third.metadata.deliveryCount == 3)

        // In progress keeps it ours; term ends redelivery for good.
        try await third.inProgress()
        try await third.term()
        try await connection.ping()
        #expect(try await consumer.fetch(batch: 1, expires: .milliseconds(500)).isEmpty)
        #expect(try await stream.ackFloor(of: "worker", reaching: 1) == 1, "terminated counts as done")
        await consumer.close()
        await stream.delete()
        await connection.drain()
    }

    @Test func unacknowledgedMessagesComeBackAfterAckWait() async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        _ = try await connection.jetStream.publish(stream.subject("x"), Data("lost worker".utf8), msgID: "m")
        let config = ConsumerConfig(durable: "slow", ackWait: .seconds(1), maxDeliver: 3)
        let consumer = try await connection.jetStream.pullConsumer(stream: stream.name, config: config)
        let first = try #require(try await consumer.fetch(batch: 1, expires: .seconds(2)).first)
        #expect(first.metadata.deliveryCount == 1)
        // Not acknowledged: the server delivers it again once ackWait has passed.
        let again = try #require(try await consumer.fetch(batch: 1, expires: .seconds(10)).first)
        #expect(again.metadata.deliveryCount == 2)
        try await again.ack()
        await consumer.close()
        await stream.delete()
        await connection.drain()
    }

    @Test func twoBindingsOfOneDurableShareTheWork() async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        let messages = (0..<200).map { OutgoingMessage(subject: stream.subject("w"), payload: Data("\($0)".utf8), msgID: "w-\($0)") }
        let results = await connection.jetStream.publishBatch(messages)
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        let config = ConsumerConfig(durable: "shared")
        let a = try await connection.jetStream.pullConsumer(stream: stream.name, config: config)
        let b = try await connection.jetStream.pullConsumer(stream: stream.name, config: config)
        var seen: [UInt64] = []
        while seen.count < 200 {
            let batchA = try await a.fetch(batch: 30, expires: .milliseconds(500))
            let batchB = try await b.fetch(batch: 30, expires: .milliseconds(500))
            try await batchA.ackAll()
            try await batchB.ackAll()
            seen += batchA.map(\.metadata.streamSequence) + batchB.map(\.metadata.streamSequence)
            if batchA.isEmpty && batchB.isEmpty { break }
        }
        #expect(seen.sorted() == Array(1...200), "every message exactly once across both bindings")
        await a.close()
        await b.close()
        // Closing a binding leaves the durable consumer and its position on the server. (Acks are
        // applied by the server asynchronously, so the floor may take a moment to reach the end.)
        #expect(try await stream.ackFloor(of: "shared", reaching: 200) == 200)
        let drainStart = ContinuousClock.now
        await stream.delete()
        await connection.drain(timeout: .seconds(30))
        #expect(ContinuousClock.now - drainStart < .seconds(10), "drain completes instead of running into its timeout")
    }

    @Test func messagesFetchedBeforeCloseCanStillBeAcknowledged() async throws {
        // libnats acknowledges through the message's subscription without a reference to it; the
        // wrapper keeps the subscription alive for its messages, so closing first is safe.
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        for index in 1...3 {
            _ = try await connection.jetStream.publish(stream.subject("late"), Data("m\(index)".utf8))
        }
        var consumer: PullConsumer? = try await connection.jetStream.pullConsumer(
            stream: stream.name, config: ConsumerConfig(durable: "closer", ackWait: .seconds(30)))
        let messages = try await consumer!.fetch(batch: 3, expires: .seconds(2))
        #expect(messages.count == 3)
        await consumer!.close()
        consumer = nil
        try await messages.ackAll()
        try await connection.ping()
        #expect(try await stream.ackFloor(of: "closer", reaching: 3) == 3)
        let info = try await connection.jetStream.consumerInfo(stream: stream.name, durable: "closer")
        #expect(info.ackPending == 0)
        await stream.delete()
        await connection.drain()
    }

    @Test func fetchAvailableTakesWhatIsThereAndNothingMore() async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        let consumer = try await connection.jetStream.pullConsumer(stream: stream.name, config: ConsumerConfig(durable: "now"))
        #expect(try await consumer.fetchAvailable(batch: 10, answerWithin: .milliseconds(100)).isEmpty,
                "an empty stream answers with nothing")
        for index in 1...3 { _ = try await connection.jetStream.publish(stream.subject("n"), Data("m\(index)".utf8)) }
        let first = try await consumer.fetchAvailable(batch: 2)
        #expect(first.map { String(decoding: $0.payload, as: UTF8.self) } == ["m1", "m2"])
        let rest = try await consumer.fetchAvailable(batch: 10)
        #expect(rest.map { String(decoding: $0.payload, as: UTF8.self) } == ["m3"])
        try await (first + rest).ackAll()
        #expect(try await consumer.fetchAvailable(batch: 10, answerWithin: .milliseconds(100)).isEmpty)
        await consumer.close()
        await stream.delete()
        await connection.drain()
    }

    /// A fetch returns as soon as one message is there; a loop with a gathering window keeps the
    /// batch open and takes what arrives meanwhile (the sink's transactions per second depend on
    /// it). Without the window the same messages come as two batches.
    @Test(arguments: [nil, Duration.seconds(3)])
    func aGatheringWindowTakesWhatArrivesAfterTheFirstMessage(window: Duration?) async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        let consumer = try await connection.jetStream.pullConsumer(stream: stream.name, config: ConsumerConfig(durable: "gather"))
        let loop = ConsumerLoop(consumer: consumer, batchSize: 100, expires: .seconds(1), gatherWindow: window,
                                lagMetric: "test_gather_pending", logger: Logger(label: "gather"))
        let batches = Mutex<[Int]>([])
        let running = Task {
            await loop.run { batch in
                batches.withLock { $0.append(batch.count) }
                try? await batch.ackAll()
            }
        }
        try await Task.sleep(for: .milliseconds(300)) // the loop is waiting in a fetch
        _ = try await connection.jetStream.publish(stream.subject("e"), Data("first".utf8))
        try await Task.sleep(for: .milliseconds(300)) // the first message has been fetched
        for index in 1...4 { _ = try await connection.jetStream.publish(stream.subject("e"), Data("m\(index)".utf8)) }
        let deadline = ContinuousClock.now + .seconds(20)
        while batches.withLock({ $0.reduce(0, +) }) < 5 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        running.cancel()
        _ = await running.value
        if window == nil {
            #expect(batches.withLock { $0.count } > 1, "the later messages came in batches of their own")
        } else {
            #expect(batches.withLock { $0 } == [5], "the four later messages joined the open batch")
        }
        await stream.delete()
        await connection.drain()
    }

    @Test func cleanupFromACancelledTaskStillRuns() async throws {
        // A consumer loop stopped by cancellation closes its subscription on the way out; that
        // work must run even though its task is cancelled, or the connection can never drain.
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        let loop = Task {
            let consumer = try await connection.jetStream.pullConsumer(stream: stream.name, config: ConsumerConfig(durable: "loop"))
            while !Task.isCancelled { _ = try? await consumer.fetch(batch: 10, expires: .milliseconds(50)) }
            await consumer.close()
        }
        try await Task.sleep(for: .milliseconds(300))
        loop.cancel()
        _ = await loop.result
        await stream.delete()
        let start = ContinuousClock.now
        await connection.drain(timeout: .seconds(20))
        #expect(ContinuousClock.now - start < .seconds(10), "drain finished instead of waiting out its timeout")
    }

    @Test func batchPublishUnderBackPressureKeepsEveryResultInOrder() async throws {
        // Only 16 publishes may await acknowledgement; 2,000 must still all land, in order.
        let connection = try await TestInfrastructure.nats { $0.maxPendingPublishes = 16 }
        let stream = try await ScratchStream(connection)
        let messages = (0..<2000).map { OutgoingMessage(subject: stream.subject("bp"), payload: Data("\($0)".utf8), msgID: "bp-\($0)") }
        let results = await connection.jetStream.publishBatch(messages)
        let sequences = try results.map { try $0.get().sequence }
        let inOrder = sequences == Array(1...2000)
        #expect(inOrder, "stored in the order given; first out of place at \(String(describing: zip(sequences, 1...).first { $0.0 != UInt64($0.1) }))")
        #expect(connection.publishCapacityAvailable == 16, "every permit came back")
        #expect(connection.publishesAwaitingAcknowledgement == 0)
        // Re-publishing the same ids stores nothing new and reports each as a duplicate.
        let again = await connection.jetStream.publishBatch(Array(messages.prefix(100)))
        #expect(try again.map { try $0.get() }.allSatisfy(\.duplicate))
        #expect(try await connection.jetStream.streamInfo(stream.name).messages == 2000)
        await stream.delete()
        await connection.drain()
    }

    @Test func publishingWhereNoStreamListensFails() async throws {
        let connection = try await TestInfrastructure.nats()
        await #expect(throws: NATSError.self) {
            try await connection.jetStream.publish("nowhere.\(TestInfrastructure.unique("s"))", Data("x".utf8))
        }
        await connection.drain()
    }

    @Test func lastMessageOfASubject() async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        #expect(try await connection.jetStream.lastMessage(stream: stream.name, subject: stream.subject("g")) == nil)
        _ = try await connection.jetStream.publish(stream.subject("g"), Data("first".utf8))
        _ = try await connection.jetStream.publish(stream.subject("h"), Data("elsewhere".utf8))
        var headers = NATSHeaders()
        headers.add("Kind", "second")
        _ = try await connection.jetStream.publish(OutgoingMessage(subject: stream.subject("g"), payload: Data("second".utf8), headers: headers))
        let last = try #require(try await connection.jetStream.lastMessage(stream: stream.name, subject: stream.subject("g")))
        #expect(String(decoding: last.payload, as: UTF8.self) == "second")
        #expect(last.sequence == 3)
        #expect(last.subject == stream.subject("g"))
        #expect(last.headers["Kind"] == "second")
        await stream.delete()
        await connection.drain()
    }

    @Test func orderedReplayOfOneSubjectFromASequence() async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        // Interleave two subjects; 1,200 on the one replayed so replay crosses several chunks.
        var messages: [OutgoingMessage] = []
        for index in 0..<1200 {
            messages.append(OutgoingMessage(subject: stream.subject("group.a"), payload: Data("a\(index)".utf8)))
            if index % 3 == 0 { messages.append(OutgoingMessage(subject: stream.subject("group.b"), payload: Data("b\(index)".utf8))) }
        }
        let results = await connection.jetStream.publishBatch(messages)
        let sequencesOfA = zip(messages, results).filter { $0.0.subject.hasSuffix(".a") }.map { try! $0.1.get().sequence }

        let all = try await connection.jetStream.replayAll(stream: stream.name, filter: stream.subject("group.a"))
        #expect(all.map { String(decoding: $0.payload, as: UTF8.self) } == (0..<1200).map { "a\($0)" })
        #expect(all.map(\.sequence) == sequencesOfA)

        let tail = try await connection.jetStream.replayAll(stream: stream.name, filter: stream.subject("group.a"), from: sequencesOfA[1000])
        #expect(tail.map(\.sequence) == Array(sequencesOfA[1000...]))

        #expect(try await connection.jetStream.replayAll(stream: stream.name, filter: stream.subject("group.none")).isEmpty)
        // A wildcard filter covering both subjects, and one whose last match is below the stream's end.
        let everything = try await connection.jetStream.replayAll(stream: stream.name, filter: stream.subject("group.*"))
        #expect(everything.count == messages.count)
        _ = try await connection.jetStream.publish(stream.subject("other.z"), Data("after".utf8))
        let onlyGroups = try await connection.jetStream.replayAll(stream: stream.name, filter: stream.subject("group.*"))
        #expect(onlyGroups.count == messages.count)
        let past = (sequencesOfA.last ?? 0) + 1_000
        #expect(try await connection.jetStream.replayAll(stream: stream.name, filter: stream.subject("group.a"), from: past).isEmpty)
        await stream.delete()
        await connection.drain()
    }

    @Test func streamConfigIsCreatedThenReconciled() async throws {
        let connection = try await TestInfrastructure.nats()
        let name = "RECONCILE_\(TestInfrastructure.unique("s"))".uppercased()
        var config = StreamConfig(name: name, subjects: ["rec.\(name).>"], duplicateWindow: .seconds(120))
        #expect(try await connection.jetStream.ensureStream(config) == .created)
        #expect(try await connection.jetStream.ensureStream(config) == .unchanged)
        config.maxAge = .seconds(3600)
        config.maxMessages = 1_000_000
        #expect(try await connection.jetStream.ensureStream(config) == .updated)
        let info = try await connection.jetStream.streamInfo(name)
        #expect(info.config.maxAge == .seconds(3600))
        #expect(info.config.maxMessages == 1_000_000)
        #expect(info.config.duplicateWindow == .seconds(120))
        #expect(try await connection.jetStream.ensureStream(config) == .unchanged)
        try await connection.jetStream.deleteStream(name)
        await connection.drain()
    }

    @Test func consumerConfigIsReconciledToo() async throws {
        let connection = try await TestInfrastructure.nats()
        let stream = try await ScratchStream(connection)
        var config = ConsumerConfig(durable: "engine", filterSubject: stream.subject(">"), ackWait: .seconds(30), maxDeliver: 5,
                                    backoff: [.seconds(1), .seconds(5), .seconds(30)])
        #expect(try await connection.jetStream.ensureConsumer(stream: stream.name, config: config) == .created)
        #expect(try await connection.jetStream.ensureConsumer(stream: stream.name, config: config) == .unchanged)
        config.maxAckPending = 500
        #expect(try await connection.jetStream.ensureConsumer(stream: stream.name, config: config) == .updated)
        let info = try await connection.jetStream.consumerInfo(stream: stream.name, durable: "engine")
        #expect(info.config.backoff == [.seconds(1), .seconds(5), .seconds(30)])
        #expect(info.config.maxDeliver == 5)
        #expect(info.config.maxAckPending == 500)
        await stream.delete()
        await connection.drain()
    }
}

@Suite("Core NATS through the wrapper")
struct CoreNATSIntegrationTests {
    @Test func liveSubscriptionReceivesInOrderUntilUnsubscribed() async throws {
        let connection = try await TestInfrastructure.nats()
        let subject = "live.\(TestInfrastructure.unique("s"))"
        let subscription = try await connection.subscribe("\(subject).>")
        try await connection.ping()
        for index in 0..<50 {
            var headers = NATSHeaders()
            headers.add("N", String(index))
            try await connection.publish("\(subject).\(index % 2 == 0 ? "even" : "odd")", Data("\(index)".utf8), headers: headers)
        }
        var iterator = subscription.makeAsyncIterator()
        var received: [NATSMessage] = []
        while received.count < 50, let message = await iterator.next() {
            received.append(message)
        }
        #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == (0..<50).map(String.init))
        #expect(received.map { $0.headers["N"] } == (0..<50).map(String.init))
        #expect(received[1].subject == "\(subject).odd")
        #expect(subscription.droppedCount == 0)
        await subscription.unsubscribe()
        // After unsubscribing, the sequence ends instead of waiting forever.
        #expect(await iterator.next() == nil)
        await connection.drain()
    }

    @Test func connectingWithoutAServerFailsClearly() async throws {
        await #expect {
            _ = try await NATSConnection.connect(url: "nats://127.0.0.1:1")
        } throws: { error in
            guard let error = error as? NATSError else { return false }
            return error.kind == .noServer && error.description.contains("nats://127.0.0.1:1")
        }
    }
}
