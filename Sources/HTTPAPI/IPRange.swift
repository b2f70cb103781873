import Contracts
import Foundation

/// One IP address ("10.0.0.7", "fd00::1") or a CIDR block ("10.0.0.0/8", "fd00::/8"), for
/// `TRUSTED_PROXIES`. An IPv4 address written as IPv6 (`::ffff:10.0.0.7`, how a dual-stack socket
/// reports IPv4 peers) is the IPv4 address.
public struct IPRange: Sendable, Hashable, CustomStringConvertible {
    /// The network's bytes (4 or 16), host bits cleared.
    let network: [UInt8]
    let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let bytes = Self.bytes(of: String(parts[0])) else { return nil }
        let bits = bytes.count * 8
        var length = bits
        if parts.count == 2 {
            guard let value = Int(parts[1]), parts[1].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isNumber),
                  (0...bits).contains(value) else { return nil }
            length = value
        }
        prefixLength = length
        network = Self.masked(bytes, prefixLength: length)
    }

    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(of: address), bytes.count == network.count else { return false }
        return Self.masked(bytes, prefixLength: prefixLength) == network
    }

    public var description: String {
        let text = network.count == 4
            ? network.map(String.init).joined(separator: ".")
            : stride(from: 0, to: 16, by: 2).map { String(UInt16(network[$0]) << 8 | UInt16(network[$0 + 1]), radix: 16) }.joined(separator: ":")
        return "\(text)/\(prefixLength)"
    }

    /// The address's bytes: 4 for IPv4 (also when written as IPv4-mapped IPv6), 16 for IPv6.
    static func bytes(of address: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }

    static func masked(_ bytes: [UInt8], prefixLength: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let kept = min(8, max(0, prefixLength - index * 8))
            return kept == 8 ? byte : byte & ~(UInt8(0xFF) >> kept)
        }
    }
}

/// Parsed `TRUSTED_PROXIES`: comma-separated addresses and CIDR blocks.
extension Array where Element == IPRange {
    /// Nil (with the entry at fault) when an entry is neither.
    public static func parse(_ text: String) -> Result<[IPRange], IPRangeError> {
        var ranges: [IPRange] = []
        for entry in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            guard let range = IPRange(entry) else { return .failure(IPRangeError(entry: entry)) }
            ranges.append(range)
        }
        return .success(ranges)
    }
}

public struct IPRangeError: Error, Equatable {
    public let entry: String
}

extension Dictionary where Key == String, Value == String {
    /// `TRUSTED_PROXIES`: IP addresses and CIDR blocks, comma-separated; a bad entry is an error.
    public func trustedProxies() throws(SettingsError) -> [IPRange] {
        switch [IPRange].parse(self["TRUSTED_PROXIES"] ?? "") {
        case .success(let ranges): return ranges
        case .failure(let error):
            throw SettingsError(variable: "TRUSTED_PROXIES", problem: "\"\(error.entry)\" is neither an IP address nor a CIDR block")
        }
    }
}
