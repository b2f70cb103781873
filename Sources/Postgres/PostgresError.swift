import CLibPQ

/// An error from Postgres or libpq. Server errors carry their SQLSTATE, so callers can recognise a
/// unique violation or a serialization failure without parsing messages.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Could not connect, or the connection broke (server restart, network).
        case connection
        /// The server answered the statement with an error (see `sqlState`).
        case server
        /// A value could not be decoded into the requested Swift type.
        case decoding
        /// The pool is shut down.
        case poolClosed
    }

    public let kind: Kind
    /// Five-character SQLSTATE for server errors (`23505`, `40001`, …).
    public let sqlState: String?
    public let message: String
    public let detail: String?
    /// Which statement or step failed (never contains parameter values).
    public let context: String

    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, context: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.context = context
    }

    public var isUniqueViolation: Bool { sqlState == "23505" }
    public var isForeignKeyViolation: Bool { sqlState == "23503" }
    public var isCheckViolation: Bool { sqlState == "23514" }
    public var isSerializationFailure: Bool { sqlState == "40001" }
    public var isDeadlock: Bool { sqlState == "40P01" }
    /// The server refuses these values themselves (SQLSTATE class 22 data exception, 23 integrity
    /// constraint violation, 54 program limit exceeded): writing them again fails again. Anything
    /// else the server says (disk full, timeouts, a read-only standby, …) may pass later.
    public var isRefusedData: Bool {
        kind == .server && ["22", "23", "54"].contains(sqlState.map { String($0.prefix(2)) } ?? "")
    }

    /// Worth retrying the whole transaction: serialization failure, deadlock, or a lost connection.
    public var isTransient: Bool {
        isSerializationFailure || isDeadlock || kind == .connection || sqlState?.hasPrefix("08") == true
            || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03"
    }

    public var description: String {
        var text = "\(context): \(message)"
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        if let detail { text += " (\(detail))" }
        return text
    }

    /// The error of a failed result.
    init(result: OpaquePointer?, connection: OpaquePointer?, context: String) {
        func field(_ code: Int32) -> String? {
            guard let result, let value = PQresultErrorField(result, code) else { return nil }
            return String(cString: value)
        }
        let sqlState = field(Int32(UInt8(ascii: "C")))
        let primary = field(Int32(UInt8(ascii: "M")))
        let detail = field(Int32(UInt8(ascii: "D")))
        let broken = connection.map { PQstatus($0) != CONNECTION_OK } ?? true
        let message = primary ?? connection.flatMap { PQerrorMessage($0) }.map { String(cString: $0).trimmed } ?? "unknown error"
        self.init(kind: sqlState == nil && broken ? .connection : .server, sqlState: sqlState,
                  message: message, detail: detail, context: context)
    }
}

extension String {
    var trimmed: String {
        var text = Substring(self)
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}
