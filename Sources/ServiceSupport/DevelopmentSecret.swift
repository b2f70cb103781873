import Foundation

/// The local run's `JWT_SECRET`: outside production, when the environment has none, a random secret
/// is created once in `.runtime/jwt-secret` (mode 0600) and shared by command-api and the streamer.
/// Production (`APP_ENV=production`) must provide the secret; nothing is generated there.
public enum DevelopmentSecret {
    public static func environment(_ environment: [String: String]) throws -> [String: String] {
        guard environment["APP_ENV"] != "production", (environment["JWT_SECRET"] ?? "").isEmpty else { return environment }
        let path = environment["JWT_SECRET_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? ".runtime/jwt-secret"
        var updated = environment
        updated["JWT_SECRET"] = try readOrCreate(at: path)
        return updated
    }

    static func readOrCreate(at path: String) throws -> String {
        if let existing = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           existing.utf8.count >= 32 {
            return existing
        }
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<48).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        // Written to a temporary file and renamed, so two services starting together agree on one.
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".jwt-secret.\(getpid())")
        _ = FileManager.default.createFile(atPath: temporary.path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600])
        if link(temporary.path, url.path) != 0 {
            unlink(temporary.path)
            // Someone else created it first: use theirs.
            return try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        unlink(temporary.path)
        return secret
    }
}
