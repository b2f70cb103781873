import ArgumentParser
import Foundation
import NATS
import Postgres
import RawNATSBench

/// The machine's raw limits, measured with plain C loops on libnats and with COPY: the ceiling any
/// service here is compared with, measured in the same run as the service.
enum RawLimits {
    /// Messages per second of `raw_js_publish_async` (JetStream publish, async acks, 4,096 pending).
    static func publish(natsURL: String, messages: Int = 100_000, payload: Int = 300) async throws -> Double {
        let nats = try await NATSConnection.connect(url: natsURL, name: "todo-bench-raw")
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        try await nats.jetStream.ensureStream(StreamConfig(name: "BENCH_\(tag)", subjects: ["bench.\(tag).>"]))
        defer { Task { try? await nats.jetStream.deleteStream("BENCH_\(tag)"); await nats.drain() } }
        var seconds = 0.0
        var error = [CChar](repeating: 0, count: 256)
        guard raw_js_publish_async(natsURL, "bench.\(tag).x", "raw-\(tag)", Int32(messages), Int32(payload), 4096, &seconds, &error, 256) == 0 else {
            throw ValidationError("raw publish failed: \(message(error))")
        }
        return Double(messages) / seconds
    }

    /// Messages per second of `raw_js_fetch_ack` draining `messages` from a fresh durable (batch 500).
    static func fetchAck(natsURL: String, messages: Int = 100_000, payload: Int = 300) async throws -> Double {
        let nats = try await NATSConnection.connect(url: natsURL, name: "todo-bench-raw")
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let stream = "BENCH_\(tag)"
        try await nats.jetStream.ensureStream(StreamConfig(name: stream, subjects: ["bench.\(tag).>"]))
        defer { Task { try? await nats.jetStream.deleteStream(stream); await nats.drain() } }
        let body = Data(repeating: UInt8(ascii: "x"), count: payload)
        for result in await nats.jetStream.publishBatch((0..<messages).map { _ in OutgoingMessage(subject: "bench.\(tag).x", payload: body) }) {
            _ = try result.get()
        }
        try await nats.jetStream.ensureConsumer(stream: stream, config: ConsumerConfig(durable: "raw", maxAckPending: 20_000))
        var seconds = 0.0
        var error = [CChar](repeating: 0, count: 256)
        guard raw_js_fetch_ack(natsURL, stream, "raw", Int32(messages), 500, &seconds, &error, 256) == 0 else {
            throw ValidationError("raw fetch failed: \(message(error))")
        }
        return Double(messages) / seconds
    }

    /// Rows per second of COPY FROM STDIN through the Postgres wrapper into a scratch table.
    static func copy(databaseURL: String, rows: Int = 200_000) async throws -> Double {
        let pool = PostgresPool(url: databaseURL, maxConnections: 1)
        let table = "bench_rows_\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        try await pool.query("CREATE TABLE \(table) (id bigint PRIMARY KEY, group_id text NOT NULL, payload text NOT NULL, n integer NOT NULL)")
        let data: [[any PostgresEncodable]] = (0..<rows).map { [Int64($0), "group-\($0 % 1000)", "payload \($0)", Int32($0 % 7)] }
        let start = ContinuousClock.now
        let copied = try await pool.copy(into: table, columns: ["id", "group_id", "payload", "n"], rows: data)
        let rate = Double(copied) / (ContinuousClock.now - start).seconds
        try await pool.query("DROP TABLE \(table)")
        await pool.shutdown()
        return rate
    }

    static func message(_ error: [CChar]) -> String {
        String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
