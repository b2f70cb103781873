import Foundation
import NATS
import Testing

/// The services reach nats-server over TLS when `NATS_CA_FILE` is set (as in Kubernetes): a
/// nats-server of its own with a certificate from a throwaway CA (openssl), on a spare port.
@Suite("NATS over TLS")
struct NATSTLSIntegrationTests {
    static func run(_ arguments: [String], in directory: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.executableLoad) }
    }

    @Test func aClientWithTheCAConnectsAndOneWithoutIsRefused() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nats-tls-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
                      "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca"], in: directory)
        try Self.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tls.key",
                      "-out", "tls.csr", "-subj", "/CN=nats"], in: directory)
        try "subjectAltName=IP:127.0.0.1\n".write(to: directory.appendingPathComponent("ext"), atomically: true, encoding: .utf8)
        try Self.run(["openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                      "-out", "tls.crt", "-days", "1", "-extfile", "ext"], in: directory)
        let port = Int.random(in: 30_000...39_999)
        let path = directory.path
        try """
            port: \(port)
            host: 127.0.0.1
            tls { cert_file: "\(path)/tls.crt", key_file: "\(path)/tls.key", ca_file: "\(path)/ca.crt" }
            authorization { users = [ { user: admin, password: "tls-test" } ] }
            """.write(to: directory.appendingPathComponent("nats.conf"), atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["nats-server", "-c", "\(path)/nats.conf"]
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }

        var options = NATSConnection.Options(url: "nats://admin:tls-test@127.0.0.1:\(port)", name: "tls-test")
        options.caFile = "\(path)/ca.crt"
        var connection: NATSConnection?
        for _ in 0..<50 where connection == nil { // the server starts
            connection = try? await NATSConnection.connect(options)
            if connection == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let connected = try #require(connection, "a client that trusts the CA connects over TLS")
        try await connected.ping()
        await connected.drain()

        options.caFile = nil
        await #expect(throws: (any Error).self, "a client without the CA does not trust the server") {
            let plain = try await NATSConnection.connect(options)
            await plain.drain()
        }
    }
}
