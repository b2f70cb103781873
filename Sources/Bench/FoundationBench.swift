import ArgumentParser
import Foundation
import NATS
import Postgres
import RawNATSBench
import ServiceSupport

/// `todo-bench foundation`: the wrappers' JetStream and Postgres rates next to plain libnats loops.
struct FoundationBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "foundation",
        abstract: "JetStream async publish and fetch+ack (wrapper vs raw libnats), COPY vs multi-row INSERT.")

    @OptionGroup var servers: BenchServers
    var natsURL: String { servers.natsURL }
    var databaseURL: String { servers.databaseURL }
    @Option(help: "Messages per NATS run.") var messages = 100_000
    @Option(help: "Rows per Postgres run.") var rows = 200_000
    @Option(help: "Runs of each measurement; the median is reported.") var runs = 3
    @Option(help: "Payload bytes per message.") var payload = 256
    @Option var output = "bench/results"

    func run() async throws {
        var report = Report(title: "Foundation benchmark", header: ["measurement", "rate", "unit", "vs raw"])
        let connection = try await NATSConnection.connect(url: natsURL, name: "todo-bench")
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let stream = "BENCH_\(tag)"
        let subject = "bench.\(tag).x"
        try await connection.jetStream.ensureStream(StreamConfig(name: stream, subjects: ["bench.\(tag).>"]))

        // Async publish: raw libnats, then the wrapper, alternating, median of `runs`.
        var rawPublish: [Double] = []
        var wrapperPublish: [Double] = []
        let body = Data(repeating: UInt8(ascii: "x"), count: payload)
        for run in 0..<runs {
            var seconds = 0.0
            var error = [CChar](repeating: 0, count: 256)
            guard raw_js_publish_async(natsURL, subject, "raw-\(run)", Int32(messages), Int32(payload), 4096, &seconds, &error, 256) == 0 else {
                throw ValidationError("raw publish failed: \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
            }
            rawPublish.append(Double(messages) / seconds)

            let batch = (0..<messages).map { OutgoingMessage(subject: subject, payload: body, msgID: "wrapper-\(run)-\($0)") }
            let start = ContinuousClock.now
            let results = await connection.jetStream.publishBatch(batch)
            let elapsed = (ContinuousClock.now - start).seconds
            let failures = results.filter { if case .failure = $0 { true } else { false } }.count
            guard failures == 0 else { throw ValidationError("\(failures) wrapper publishes failed") }
            wrapperPublish.append(Double(messages) / elapsed)
            print("publish run \(run + 1): raw \(Int(rawPublish.last!)) msg/s, wrapper \(Int(wrapperPublish.last!)) msg/s")
        }
        report.rows.append(["JetStream async publish, raw libnats loop", String(format: "%.0f", median(rawPublish)), "msg/s", "100%"])
        report.rows.append(["JetStream async publish, Swift wrapper (`publishBatch`)", String(format: "%.0f", median(wrapperPublish)), "msg/s",
                            percent(median(wrapperPublish), median(rawPublish))])

        // Fetch + ack: each run drains `messages` from its own durable consumer.
        var rawFetch: [Double] = []
        var wrapperFetch: [Double] = []
        var wrapperFetchRead: [Double] = []
        for run in 0..<runs {
            let rawDurable = "raw_\(run)"
            let wrapperDurable = "wrapper_\(run)"
            try await connection.jetStream.ensureConsumer(stream: stream, config: ConsumerConfig(durable: rawDurable, maxAckPending: 20_000))
            var seconds = 0.0
            var error = [CChar](repeating: 0, count: 256)
            guard raw_js_fetch_ack(natsURL, stream, rawDurable, Int32(messages), 500, &seconds, &error, 256) == 0 else {
                throw ValidationError("raw fetch failed: \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
            }
            rawFetch.append(Double(messages) / seconds)

            let consumer = try await connection.jetStream.pullConsumer(
                stream: stream, config: ConsumerConfig(durable: wrapperDurable, maxAckPending: 20_000))
            var received = 0
            let start = ContinuousClock.now
            while received < messages {
                let batch = try await consumer.fetch(batch: 500, expires: .seconds(5))
                try await batch.ackAll()
                received += batch.count
            }
            try await connection.ping()
            wrapperFetch.append(Double(received) / (ContinuousClock.now - start).seconds)
            await consumer.close()

            // The same, reading what a real consumer reads: payload, stream sequence, delivery count.
            let reading = try await connection.jetStream.pullConsumer(
                stream: stream, config: ConsumerConfig(durable: "\(wrapperDurable)_read", maxAckPending: 20_000))
            received = 0
            var checksum: UInt64 = 0
            let readStart = ContinuousClock.now
            while received < messages {
                let batch = try await reading.fetch(batch: 500, expires: .seconds(5))
                for message in batch {
                    checksum &+= UInt64(message.payload.count) &+ message.metadata.streamSequence &+ message.metadata.deliveryCount
                }
                try await batch.ackAll()
                received += batch.count
            }
            try await connection.ping()
            wrapperFetchRead.append(Double(received) / (ContinuousClock.now - readStart).seconds)
            await reading.close()
            precondition(checksum > 0)
            print("fetch+ack run \(run + 1): raw \(Int(rawFetch.last!)) msg/s, wrapper \(Int(wrapperFetch.last!)) msg/s, wrapper reading \(Int(wrapperFetchRead.last!)) msg/s")
        }
        report.rows.append(["JetStream fetch + ack (batch 500), raw libnats loop", String(format: "%.0f", median(rawFetch)), "msg/s", "100%"])
        report.rows.append(["JetStream fetch + ack (batch 500), Swift wrapper", String(format: "%.0f", median(wrapperFetch)), "msg/s",
                            percent(median(wrapperFetch), median(rawFetch))])
        report.rows.append(["JetStream fetch + ack (batch 500), Swift wrapper, reading payload + metadata of each message",
                            String(format: "%.0f", median(wrapperFetchRead)), "msg/s", percent(median(wrapperFetchRead), median(rawFetch))])
        try await connection.jetStream.deleteStream(stream)
        await connection.drain()

        // Postgres: COPY vs multi-row parameterized INSERT through the wrapper.
        let pool = PostgresPool(url: databaseURL, maxConnections: 2)
        let table = "bench_rows_\(tag)"
        try await pool.query("CREATE TABLE \(table) (id bigint PRIMARY KEY, group_id text NOT NULL, payload text NOT NULL, n integer NOT NULL)")
        var copyRates: [Double] = []
        var insertRates: [Double] = []
        for run in 0..<runs {
            try await pool.query("TRUNCATE \(table)")
            let data: [[any PostgresEncodable]] = (0..<rows).map { [Int64($0), "group-\($0 % 1000)", "payload \($0)\twith tab", Int32($0 % 7)] }
            var start = ContinuousClock.now
            let copied = try await pool.copy(into: table, columns: ["id", "group_id", "payload", "n"], rows: data)
            copyRates.append(Double(copied) / (ContinuousClock.now - start).seconds)

            try await pool.query("TRUNCATE \(table)")
            let perStatement = 1000
            start = ContinuousClock.now
            try await pool.withTransaction { connection in
                var offset = 0
                while offset < rows {
                    let end = min(offset + perStatement, rows)
                    var placeholders: [String] = []
                    var parameters: [any PostgresEncodable] = []
                    parameters.reserveCapacity((end - offset) * 4)
                    for i in offset..<end {
                        let p = parameters.count
                        placeholders.append("($\(p + 1), $\(p + 2), $\(p + 3), $\(p + 4))")
                        parameters.append(contentsOf: [Int64(i), "group-\(i % 1000)", "payload \(i)\twith tab", Int32(i % 7)] as [any PostgresEncodable])
                    }
                    try connection.query("INSERT INTO \(table) (id, group_id, payload, n) VALUES " + placeholders.joined(separator: ","), parameters)
                    offset = end
                }
            }
            insertRates.append(Double(rows) / (ContinuousClock.now - start).seconds)
            print("postgres run \(run + 1): COPY \(Int(copyRates.last!)) rows/s, INSERT \(Int(insertRates.last!)) rows/s")
        }
        try await pool.query("DROP TABLE \(table)")
        await pool.shutdown()
        report.rows.append(["Postgres COPY FROM STDIN, wrapper", String(format: "%.0f", median(copyRates)), "rows/s", "–"])
        report.rows.append(["Postgres multi-row INSERT (1000 rows/statement, parameterized), wrapper",
                            String(format: "%.0f", median(insertRates)), "rows/s", "–"])
        report.notes = [
            "\(messages) messages of \(payload) bytes per NATS run, each with a unique Nats-Msg-Id, file storage; \(rows) rows of 4 columns per Postgres run into a regular (WAL-logged) table with a primary key; median of \(runs) runs.",
            "Target: the Swift wrappers reach at least 80% of the raw libnats rates.",
        ]
        print(report.markdown())
        print("written to \(try report.write(to: output, name: "foundation"))")
    }

    func percent(_ value: Double, _ baseline: Double) -> String {
        String(format: "%.0f%%", value / baseline * 100)
    }
}
