/// A durable pull consumer with explicit acknowledgements.
public struct ConsumerConfig: Sendable, Equatable {
    public var durable: String
    /// One subject filter (nats-server 2.9 takes one); nil consumes the whole stream.
    public var filterSubject: String?
    /// How long a delivered message may stay unacknowledged before it is delivered again.
    public var ackWait: Duration = .seconds(30)
    /// Deliveries before the server gives up on a message; -1 is unlimited.
    public var maxDeliver: Int = -1
    /// Redelivery delays, one per attempt (the last repeats). Empty uses `ackWait`. When set,
    /// the server uses the first delay as the ack wait (nats-server behaviour).
    public var backoff: [Duration] = []
    /// Messages delivered and not yet acknowledged, across all fetchers of this consumer.
    public var maxAckPending: Int = 20_000
    /// Largest batch one fetch may ask for.
    public var maxRequestBatch: Int = 0

    public init(durable: String, filterSubject: String? = nil, ackWait: Duration = .seconds(30), maxDeliver: Int = -1,
                backoff: [Duration] = [], maxAckPending: Int = 20_000) {
        self.durable = durable
        self.filterSubject = filterSubject
        self.ackWait = ackWait
        self.maxDeliver = maxDeliver
        self.backoff = backoff
        self.maxAckPending = maxAckPending
    }

    /// The ack wait the server applies: the first backoff delay when there is one.
    var effectiveAckWait: Duration { backoff.first ?? ackWait }

    func matches(_ other: ConsumerConfig) -> Bool {
        durable == other.durable && (filterSubject ?? "") == (other.filterSubject ?? "")
            && effectiveAckWait == other.effectiveAckWait && maxDeliver == other.maxDeliver && backoff == other.backoff
            && maxAckPending == other.maxAckPending
    }
}

/// The server's view of a consumer.
public struct ConsumerInfo: Sendable {
    public let config: ConsumerConfig
    /// Messages matching the filter that were not delivered yet (the consumer's lag).
    public let pending: UInt64
    public let ackPending: Int
    public let redelivered: Int
    /// Stream sequence below which every message is acknowledged.
    public let ackFloorStreamSequence: UInt64
}
