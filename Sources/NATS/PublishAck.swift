import Foundation

/// What JetStream answered for one stored message.
public struct PublishAck: Sendable, Equatable {
    public let stream: String
    /// The stream sequence the message is stored at (for a duplicate: the original's).
    public let sequence: UInt64
    /// True when the message id was already in the duplicate window, so nothing new was stored.
    public let duplicate: Bool

    public init(stream: String, sequence: UInt64, duplicate: Bool) {
        self.stream = stream
        self.sequence = sequence
        self.duplicate = duplicate
    }
}

/// A message to publish to JetStream.
public struct OutgoingMessage: Sendable {
    public var subject: String
    public var payload: Data
    public var headers: NATSHeaders

    /// - Parameters:
    ///   - msgID: `Nats-Msg-Id`, for JetStream's duplicate detection.
    ///   - expectedLastSubjectSequence: `Nats-Expected-Last-Subject-Sequence`; 0 means "the subject
    ///     has no message yet" (set as a header, because libnats' option treats 0 as unset).
    public init(subject: String, payload: Data, msgID: String? = nil,
                expectedLastSubjectSequence: UInt64? = nil, headers: NATSHeaders = NATSHeaders()) {
        self.subject = subject
        self.payload = payload
        self.headers = headers
        if let msgID { self.headers.add(JetStreamHeader.msgID, msgID) }
        if let expectedLastSubjectSequence {
            self.headers.add(JetStreamHeader.expectedLastSubjectSequence, String(expectedLastSubjectSequence))
        }
    }
}
