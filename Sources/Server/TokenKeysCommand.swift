import ArgumentParser
import Foundation
import HTTPAPI

/// `todo token-keys`: a new Ed25519 key for the access tokens (DESIGN §11). Writes the private JWK
/// (command-api's `JWT_SIGNING_KEY`, a Secret) and adds its public half to a JWKS (every
/// verifier's `JWT_PUBLIC_KEYS`), keeping the keys already in it, so a rotation is: make the new
/// key, roll out the new public set, switch command-api's signing key, and drop the old public key
/// once the old key's last token has expired (15 minutes).
struct TokenKeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token-keys", abstract: "Create an access-token signing key and add its public half to a key set.")

    @Option(help: "Key id (A-Z, a-z, 0-9, '.', '_', '-'; e.g. the date).") var kid: String
    @Option(help: "Where the private JWK goes (created with mode 0600; must not exist).") var privateKey: String
    @Option(help: "The public JWKS to add to (created when missing).") var publicKeys: String

    func run() throws {
        let key = TokenSigningKey.generate(kid: kid)
        _ = try TokenSigningKey(jwk: key.jwk) // checks the kid
        var set = TokenVerificationKeys([])
        if FileManager.default.fileExists(atPath: publicKeys) {
            set = try TokenVerificationKeys(jwks: try String(contentsOfFile: publicKeys, encoding: .utf8))
            guard set.keys[kid] == nil else { throw ValidationError("\(publicKeys) already holds a key \(kid)") }
        }
        guard !FileManager.default.fileExists(atPath: privateKey) else { throw ValidationError("\(privateKey) exists") }
        guard FileManager.default.createFile(atPath: privateKey, contents: Data(key.jwk.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(privateKey)")
        }
        try Data(set.adding(key.publicKey).jwks.utf8).write(to: URL(fileURLWithPath: publicKeys), options: .atomic)
        print("signing key \(kid): \(privateKey) (secret); public keys: \(publicKeys) (\(set.keys.count + 1) key(s))")
    }
}
