import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The client's IP for per-IP limits: the socket's peer, unless that peer is a configured trusted
/// proxy (an address or a CIDR block: in Kubernetes the Gateway's pods have addresses from a
/// range), in which case the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
/// Without trusted proxies the header is ignored, so a client cannot pick its own identity.
public struct ClientAddressResolver: Sendable {
    public let trustedProxies: [IPRange]

    public init(trustedProxies: [IPRange] = []) {
        self.trustedProxies = trustedProxies
    }

    public func isTrusted(_ address: String) -> Bool {
        trustedProxies.contains { $0.contains(address) }
    }

    public func clientIP(remote: SocketAddress?, headers: HTTPFields) -> String {
        let peer = remote?.ipAddress ?? "unknown"
        guard isTrusted(peer), let forwarded = headers[values: .xForwardedFor].last else { return peer }
        let hops = forwarded.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return hops.last(where: { !isTrusted($0) }) ?? peer
    }
}

extension HTTPField.Name {
    public static let xForwardedFor = Self("X-Forwarded-For")!
    public static let idempotencyKey = Self("Idempotency-Key")!
    public static let lastEventID = Self("Last-Event-ID")!
    public static let xAccelBuffering = Self("X-Accel-Buffering")!
}
