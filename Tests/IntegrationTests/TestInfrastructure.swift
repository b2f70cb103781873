import Contracts
import Foundation
import HTTPAPI
import NATS
import Postgres
import Testing

/// The servers `make test` starts (scripts/infra.sh on test ports). These tests never skip: when
/// a server is missing they fail and say how to start it.
enum TestInfrastructure {
    static let environment = ProcessInfo.processInfo.environment
    static let natsServer = environment["TEST_NATS_URL"] ?? "nats://127.0.0.1:14222"
    /// The test nats-server's passwords (scripts/infra.sh writes one per user).
    static let secrets = environment["TEST_SECRETS_DIR"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.runtime/test/secrets").standardized.path
    static func natsPassword(_ user: String) -> String? {
        (try? String(contentsOfFile: "\(secrets)/nats-\(user)", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    /// The server URL with a user's credentials.
    static func natsURL(as user: String) -> String {
        guard let password = natsPassword(user) else { return natsServer }
        return (try? NATSCredentials.with(user: user, password: password, in: natsServer)) ?? natsServer
    }
    /// As `admin`, who may do anything (the suites stand in for every service).
    static let natsURL = natsURL(as: "admin")
    /// The access-token key of the in-process command-api and streamer.
    static let tokenKey = TokenSigningKey.generate(kid: "test")
    static let databaseURL = environment["TEST_DATABASE_URL"] ?? "postgres://app:password@127.0.0.1:15432/app?sslmode=disable"
    /// Restarts the test Postgres (used by the pool-recovery test).
    static let restartPostgresCommand = environment["TEST_RESTART_POSTGRES"]
        ?? "RUNTIME_DIR=.runtime/test NATS_PORT=14222 NATS_MONITOR_PORT=18222 PG_PORT=15432 scripts/infra.sh restart-postgres"

    /// scripts/infra.sh for the test servers (`stop-nats`, `start-nats`).
    static let infraScript = environment["TEST_INFRA"]
        ?? "RUNTIME_DIR=.runtime/test NATS_PORT=14222 NATS_MONITOR_PORT=18222 PG_PORT=15432 scripts/infra.sh"

    static let hint = "start the test servers with `make test-infra` (or run `make test`)"

    static func nats(name: String = "integration-tests", configure: (inout NATSConnection.Options) -> Void = { _ in }) async throws -> NATSConnection {
        var options = NATSConnection.Options(url: natsURL, name: name)
        configure(&options)
        do {
            return try await NATSConnection.connect(options)
        } catch {
            Issue.record("cannot reach the test NATS server at \(natsServer): \(error); \(hint)")
            throw error
        }
    }

    static func pool(maxConnections: Int = 10, url: String = databaseURL) async throws -> PostgresPool {
        let pool = PostgresPool(url: url, maxConnections: maxConnections)
        do {
            try await pool.query("SELECT 1")
        } catch {
            Issue.record("cannot reach the test Postgres at \(databaseURL): \(error); \(hint)")
            await pool.shutdown()
            throw error
        }
        return pool
    }

    /// A name no other test (or earlier run) uses.
    static func unique(_ prefix: String) -> String {
        "\(prefix)_\(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_FFFF)"
    }

    /// Runs a shell command to completion on a thread of its own (waiting for a child process
    /// must not block the Swift concurrency pool).
    static func run(_ command: String) async throws {
        let status: Int32 = await withCheckedContinuation { continuation in
            let thread = Thread {
                var pid: pid_t = 0
                let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/bash"), strdup("-c"), strdup(command), nil]
                defer { for arg in argv { free(arg) } }
                guard posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ) == 0 else {
                    continuation.resume(returning: -1)
                    return
                }
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                continuation.resume(returning: (status >> 8) & 0xFF)
            }
            thread.start()
        }
        guard status == 0 else { throw CommandFailed(command: command, status: status) }
    }

    struct CommandFailed: Error, CustomStringConvertible {
        let command: String
        let status: Int32
        var description: String { "`\(command)` exited with \(status)" }
    }
}

/// A stream of its own for one test, deleted afterwards.
struct ScratchStream {
    let connection: NATSConnection
    let name: String
    let prefix: String

    init(_ connection: NATSConnection) async throws {
        self.connection = connection
        let tag = TestInfrastructure.unique("t")
        name = "TEST_\(tag)".uppercased()
        prefix = "test.\(tag)"
        try await connection.jetStream.ensureStream(StreamConfig(name: name, subjects: ["\(prefix).>"], duplicateWindow: .seconds(120)))
    }

    func subject(_ suffix: String) -> String { "\(prefix).\(suffix)" }

    /// The durable's ack floor once it reaches `target`, or what it is after 5 s. The server
    /// applies acknowledgements asynchronously, so it can trail `ackAll()` for a moment.
    func ackFloor(of durable: String, reaching target: UInt64) async throws -> UInt64 {
        var floor: UInt64 = 0
        for _ in 0..<50 {
            floor = try await connection.jetStream.consumerInfo(stream: name, durable: durable).ackFloorStreamSequence
            if floor >= target { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return floor
    }

    func delete() async {
        try? await connection.jetStream.deleteStream(name)
    }
}
