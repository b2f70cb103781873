import Foundation

/// The local run's token keys: outside production, when the environment names none, an Ed25519
/// pair is created once in `.runtime/jwt/` — `signing-key.jwk` (mode 0600, read by command-api
/// only) and `public-keys.jwks` (read by every verifier) — and the `_FILE` settings point at them.
/// Production (`APP_ENV=production`) must provide `JWT_SIGNING_KEY` to command-api and
/// `JWT_PUBLIC_KEYS` to every verifier; nothing is generated there.
public enum DevelopmentKeys {
    public enum Role: Sendable { case signer, verifier }

    public static func environment(_ environment: [String: String], role: Role) throws -> [String: String] {
        guard environment["APP_ENV"] != "production" else { return environment }
        func isSet(_ name: String) -> Bool { !(environment[name] ?? "").isEmpty || !(environment[name + "_FILE"] ?? "").isEmpty }
        let needsSigning = role == .signer && !isSet("JWT_SIGNING_KEY")
        let needsPublic = !isSet("JWT_PUBLIC_KEYS") && (role == .verifier || needsSigning)
        guard needsSigning || needsPublic else { return environment }
        let directory = environment["JWT_KEYS_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? ".runtime/jwt"
        let (signingPath, publicPath) = try ensurePair(in: directory)
        var updated = environment
        if needsSigning { updated["JWT_SIGNING_KEY_FILE"] = signingPath }
        if needsPublic { updated["JWT_PUBLIC_KEYS_FILE"] = publicPath }
        return updated
    }

    /// Creates the pair unless it exists. Two services starting together agree on one: the private
    /// key is written to a temporary file and linked into place (the loser reads the winner's),
    /// and the public set is derived from it.
    static func ensurePair(in directory: String) throws -> (signing: String, public: String) {
        let folder = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let signingPath = folder.appendingPathComponent("signing-key.jwk").path
        let publicPath = folder.appendingPathComponent("public-keys.jwks").path
        let key: TokenSigningKey
        if let text = try? String(contentsOfFile: signingPath, encoding: .utf8), let existing = try? TokenSigningKey(jwk: text) {
            key = existing
        } else {
            let fresh = TokenSigningKey.generate(kid: "dev-" + String(UUID().uuidString.prefix(8)).lowercased())
            let temporary = folder.appendingPathComponent(".signing-key.\(getpid())").path
            _ = FileManager.default.createFile(atPath: temporary, contents: Data(fresh.jwk.utf8), attributes: [.posixPermissions: 0o600])
            defer { unlink(temporary) }
            if link(temporary, signingPath) == 0 {
                key = fresh
            } else {
                key = try TokenSigningKey(jwk: try String(contentsOfFile: signingPath, encoding: .utf8))
            }
        }
        let jwks = TokenVerificationKeys([key.publicKey]).jwks
        if (try? String(contentsOfFile: publicPath, encoding: .utf8)) != jwks {
            let temporary = folder.appendingPathComponent(".public-keys.\(getpid())").path
            _ = FileManager.default.createFile(atPath: temporary, contents: Data(jwks.utf8), attributes: [.posixPermissions: 0o644])
            guard rename(temporary, publicPath) == 0 else { throw CocoaError(.fileWriteUnknown) }
        }
        return (signingPath, publicPath)
    }
}
