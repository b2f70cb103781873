import Contracts
import Crypto
import Foundation

/// The Ed25519 keys of the access tokens, as JSON Web Keys (RFC 8037):
/// `{"kty":"OKP","crv":"Ed25519","kid":"…","x":"<public key>"}`, with `"d":"<private key>"` in the
/// signing key. Only command-api holds a signing key (`JWT_SIGNING_KEY`); every verifier holds the
/// public key set (`JWT_PUBLIC_KEYS`, a JWKS `{"keys":[…]}`), so no read-side process can mint a
/// token. Rotation: a new signing key with a new `kid`, and the old public key kept in the set until
/// the last token it signed has expired.
public struct TokenSigningKey: Sendable, Equatable {
    public let kid: String
    let key: Curve25519.Signing.PrivateKey

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.kid == rhs.kid && lhs.key.rawRepresentation == rhs.key.rawRepresentation
    }

    public init(kid: String, key: Curve25519.Signing.PrivateKey) {
        self.kid = kid
        self.key = key
    }

    /// A new random key.
    public static func generate(kid: String) -> TokenSigningKey {
        TokenSigningKey(kid: kid, key: Curve25519.Signing.PrivateKey())
    }

    /// Parses a private JWK.
    public init(jwk text: String) throws(TokenKeyError) {
        let jwk = try JWK.decode(text)
        guard let d = jwk.d else { throw TokenKeyError("is a public key; the signing key needs its private part \"d\"") }
        guard let raw = Base64URL.decode(d), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw TokenKeyError("\"d\" is not a base64url Ed25519 private key")
        }
        if let x = Base64URL.decode(jwk.x), x != key.publicKey.rawRepresentation {
            throw TokenKeyError("\"x\" is not the public half of \"d\"")
        }
        self.init(kid: jwk.kid, key: key)
    }

    public var publicKey: TokenPublicKey { TokenPublicKey(kid: kid, key: key.publicKey) }

    /// Settings for processes started with this key (benchmarks, tests): command-api reads both,
    /// verifiers only `JWT_PUBLIC_KEYS`.
    public var environment: [String: String] {
        ["JWT_SIGNING_KEY": jwk, "JWT_PUBLIC_KEYS": TokenVerificationKeys([publicKey]).jwks]
    }

    /// The private JWK (a secret: for `JWT_SIGNING_KEY` only).
    public var jwk: String {
        JWK(kty: "OKP", crv: "Ed25519", kid: kid, x: Base64URL.encode(key.publicKey.rawRepresentation),
            d: Base64URL.encode(key.rawRepresentation)).json
    }
}

public struct TokenPublicKey: Sendable, Equatable {
    public let kid: String
    let key: Curve25519.Signing.PublicKey

    init(kid: String, key: Curve25519.Signing.PublicKey) {
        self.kid = kid
        self.key = key
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.kid == rhs.kid && lhs.key.rawRepresentation == rhs.key.rawRepresentation
    }

    public var jwk: String {
        JWK(kty: "OKP", crv: "Ed25519", kid: kid, x: Base64URL.encode(key.rawRepresentation), d: nil).json
    }
}

/// The public keys tokens are checked with, by `kid`.
public struct TokenVerificationKeys: Sendable, Equatable {
    public private(set) var keys: [String: TokenPublicKey]

    public init(_ keys: [TokenPublicKey]) {
        self.keys = Dictionary(keys.map { ($0.kid, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// Parses a JWKS (`{"keys":[…]}`); private parts, if present, are ignored.
    public init(jwks text: String) throws(TokenKeyError) {
        struct Set: Decodable { let keys: [JWK] }
        guard let set = try? JSONDecoder().decode(Set.self, from: Data(text.utf8)) else {
            throw TokenKeyError("is not a JSON Web Key Set {\"keys\":[…]}")
        }
        guard !set.keys.isEmpty else { throw TokenKeyError("holds no key") }
        var keys: [TokenPublicKey] = []
        for jwk in set.keys {
            try jwk.check()
            guard let raw = Base64URL.decode(jwk.x), let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
                throw TokenKeyError("key \(jwk.kid): \"x\" is not a base64url Ed25519 public key")
            }
            guard !keys.contains(where: { $0.kid == jwk.kid }) else { throw TokenKeyError("kid \(jwk.kid) appears twice") }
            keys.append(TokenPublicKey(kid: jwk.kid, key: key))
        }
        self.init(keys)
    }

    /// The set with `key` added (command-api verifies what it signs).
    public func adding(_ key: TokenPublicKey) -> TokenVerificationKeys {
        var copy = self
        copy.keys[key.kid] = key
        return copy
    }

    public var jwks: String {
        "{\"keys\":[" + keys.values.sorted { $0.kid < $1.kid }.map(\.jwk).joined(separator: ",") + "]}"
    }
}

public struct TokenKeyError: Error, Equatable, CustomStringConvertible {
    public let problem: String
    init(_ problem: String) { self.problem = problem }
    public var description: String { problem }
}

/// An Ed25519 JSON Web Key.
struct JWK: Codable {
    var kty: String
    var crv: String
    var kid: String
    var x: String
    var d: String?

    static func decode(_ text: String) throws(TokenKeyError) -> JWK {
        guard let jwk = try? JSONDecoder().decode(JWK.self, from: Data(text.utf8)) else {
            throw TokenKeyError("is not a JSON Web Key {\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":…,\"x\":…}")
        }
        try jwk.check()
        return jwk
    }

    func check() throws(TokenKeyError) {
        guard kty == "OKP", crv == "Ed25519" else { throw TokenKeyError("key \(kid): only Ed25519 keys (kty OKP, crv Ed25519) are accepted") }
        guard TokenKeyID.isValid(kid) else { throw TokenKeyError("kid \(kid.debugDescription): must be 1–64 characters of A-Z, a-z, 0-9, '.', '_' or '-'") }
    }

    var json: String {
        var fields = ["\"kty\":\"OKP\"", "\"crv\":\"Ed25519\"", "\"kid\":\"\(kid)\"", "\"x\":\"\(x)\""]
        if let d { fields.append("\"d\":\"\(d)\"") }
        return "{" + fields.joined(separator: ",") + "}"
    }
}

enum TokenKeyID {
    static func isValid(_ kid: String) -> Bool {
        (1...64).contains(kid.utf8.count) && kid.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        }
    }
}

enum Base64URL {
    static func encode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: some StringProtocol) -> Data? {
        guard text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F })
        else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

extension Dictionary where Key == String, Value == String {
    /// `JWT_SIGNING_KEY` (a private JWK), or the file named by `JWT_SIGNING_KEY_FILE`.
    public func tokenSigningKey() throws(SettingsError) -> TokenSigningKey {
        let (variable, text) = try setting("JWT_SIGNING_KEY")
        do { return try TokenSigningKey(jwk: text) } catch { throw SettingsError(variable: variable, problem: error.problem) }
    }

    /// `JWT_PUBLIC_KEYS` (a JWKS), or the file named by `JWT_PUBLIC_KEYS_FILE`.
    public func tokenVerificationKeys() throws(SettingsError) -> TokenVerificationKeys {
        let (variable, text) = try setting("JWT_PUBLIC_KEYS")
        do { return try TokenVerificationKeys(jwks: text) } catch { throw SettingsError(variable: variable, problem: error.problem) }
    }

    /// command-api: the public keys, and the signing key's own public half.
    public func tokenVerificationKeys(adding signing: TokenSigningKey) throws(SettingsError) -> TokenVerificationKeys {
        if self["JWT_PUBLIC_KEYS"].map({ !$0.isEmpty }) == true || self["JWT_PUBLIC_KEYS_FILE"].map({ !$0.isEmpty }) == true {
            return try tokenVerificationKeys().adding(signing.publicKey)
        }
        return TokenVerificationKeys([signing.publicKey])
    }

    private func setting(_ name: String) throws(SettingsError) -> (variable: String, text: String) {
        if let text = self[name], !text.isEmpty { return (name, text) }
        let fileVariable = name + "_FILE"
        guard let path = self[fileVariable], !path.isEmpty else {
            throw SettingsError(variable: name, problem: "is not set (nor \(fileVariable)); local runs write keys to .runtime/jwt/, production must provide them")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SettingsError(variable: fileVariable, problem: "\(path) cannot be read")
        }
        return (fileVariable, text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
