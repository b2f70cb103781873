import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix
import ThreadPoolSupport

/// bcrypt on its own small thread pool (a hash takes tens of milliseconds of CPU; it must not run on
/// the concurrency pool or the Postgres threads).
///
/// bcrypt reads at most 72 bytes, and passwords may have 128 characters, so the password is first
/// reduced to the base64 of its SHA-256 (44 bytes): every character counts, and the input to bcrypt
/// never contains a NUL.
public final class PasswordHasher: Sendable {
    public static let lengthRange = 8...128

    private let cost: UInt8
    private let threads: NIOThreadPool
    /// Checked against when the user does not exist, so that a login takes as long either way.
    private let decoyHash: String

    public init(cost: Int, threads: Int = 2) {
        self.cost = UInt8(clamping: cost)
        self.threads = NIOThreadPool(numberOfThreads: threads)
        self.threads.start()
        decoyHash = Bcrypt.hash(Self.prehash(UUID().uuidString), cost: UInt8(clamping: cost))
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await threads.runToCompletion { Bcrypt.hash(Self.prehash(password), cost: cost) }
    }

    /// Verifies `password` against `hash`, or against a decoy when there is no user (always false).
    public func verify(_ password: String, hash: String?) async throws -> Bool {
        let target = hash ?? decoyHash
        let matches = try await threads.runToCompletion { Bcrypt.verify(Self.prehash(password), hash: target) }
        return matches && hash != nil
    }

    public func shutdown() async {
        try? await threads.shutdownGracefully()
    }

    static func prehash(_ password: String) -> String {
        Data(SHA256.hash(data: Data(password.utf8))).base64EncodedString()
    }
}
