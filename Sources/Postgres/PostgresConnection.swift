import CLibPQ
import Foundation

/// One libpq connection. Its methods block: use it only inside `PostgresPool.withConnection` /
/// `withTransaction`, which run on the pool's own threads, never on the Swift concurrency pool.
public final class PostgresConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    var lastUsed = ContinuousClock.now
    /// Server-side names of the statements prepared on this connection, by SQL text.
    private var prepared: [String: String] = [:]

    /// Opens a connection outside any pool (blocking: call it from a pool thread or a test).
    public static func open(url: String) throws(PostgresError) -> PostgresConnection {
        try PostgresConnection(url: url)
    }

    /// Opens a connection (blocking). The session runs with `TimeZone = UTC` and without JIT
    /// compilation: every statement here is short, and the planner's cost guesses (the sink's
    /// statements over a large events table) made Postgres spend ~30 ms compiling each of them.
    init(url: String) throws(PostgresError) {
        guard let connection = PQconnectdb(url) else {
            throw PostgresError(kind: .connection, message: "out of memory", context: "connect")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(connection)).trimmed
            PQfinish(connection)
            throw PostgresError(kind: .connection, message: message, context: "connect to Postgres")
        }
        handle = connection
        try execute("SET TimeZone = 'UTC'; SET client_min_messages = warning; SET jit = off")
    }

    /// Whether the connection still works, checked without a round trip or any wait: it must be
    /// open and idle (not inside a transaction), and nothing may have arrived on its socket while
    /// it sat idle. A server that restarts sends a FATAL message and closes the socket; any such
    /// traffic (or a hang-up) marks the connection stale.
    var isUsable: Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK, PQtransactionStatus(handle) == PQTRANS_IDLE else { return false }
        let socket = PQsocket(handle)
        guard socket >= 0 else { return false }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN) | 0x2000 /* POLLRDHUP */, revents: 0)
        let ready = poll(&descriptor, 1, 0)
        return ready == 0
    }

    public func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    deinit { close() }

    /// Runs one parameterized statement (`$1`, `$2`, …); values are never spliced into SQL.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) throws(PostgresError) -> PostgresRows {
        let handle = try liveHandle(sql)
        let texts = parameters.map(\.postgresText)
        let result = withCStringArray(texts) { values in
            PQexecParams(handle, sql, Int32(texts.count), nil, values, nil, nil, 0)
        }
        return try consume(result, sql: sql)
    }

    /// Runs a statement that is prepared on this connection the first time it is used here: later
    /// calls skip the server's parsing and planning (Postgres re-plans it by itself when a table it
    /// uses changes). For statements run often whose planning is much of their cost, such as the
    /// data sink's per-batch statements (planning them took about as long as running them on a
    /// live-rate batch of 30 events), and the membership check and the streamer's reads that
    /// every request makes.
    @discardableResult
    public func queryPrepared(_ sql: String, _ parameters: [any PostgresEncodable] = []) throws(PostgresError) -> PostgresRows {
        let handle = try liveHandle(sql)
        let name: String
        if let existing = prepared[sql] {
            name = existing
        } else {
            name = "stmt_\(prepared.count + 1)"
            _ = try consume(PQprepare(handle, name, sql, 0, nil), sql: sql)
            prepared[sql] = name
        }
        let texts = parameters.map(\.postgresText)
        let result = withCStringArray(texts) { values in
            PQexecPrepared(handle, name, Int32(texts.count), values, nil, nil, 0)
        }
        return try consume(result, sql: sql)
    }

    /// Variadic convenience for `queryPrepared(_:_:)`.
    @discardableResult
    public func queryPrepared(_ sql: String, _ first: any PostgresEncodable, _ rest: any PostgresEncodable...) throws(PostgresError) -> PostgresRows {
        try queryPrepared(sql, [first] + rest)
    }

    /// Variadic convenience: `try connection.query("SELECT $1::int", 1)`.
    @discardableResult
    public func query(_ sql: String, _ first: any PostgresEncodable, _ rest: any PostgresEncodable...) throws(PostgresError) -> PostgresRows {
        try query(sql, [first] + rest)
    }

    /// Runs trusted SQL with no parameters, possibly several statements (migrations, `BEGIN`).
    public func execute(_ sql: String) throws(PostgresError) {
        let handle = try liveHandle(sql)
        _ = try consume(PQexec(handle, sql), sql: sql)
    }

    /// `COPY table (columns) FROM STDIN` in text format: the fastest way to insert many rows.
    /// Returns the number of rows copied.
    @discardableResult
    public func copy(into table: String, columns: [String], rows: some Sequence<[any PostgresEncodable]>) throws(PostgresError) -> Int {
        try copy(into: table, columns: columns, rows: rows) { row, encoder in
            for value in row { encoder.append(value) }
        }
    }

    /// COPY with rows written by `encode`, one `append` per column, without boxing each value.
    @discardableResult
    public func copy<Row>(into table: String, columns: [String], rows: some Sequence<Row>,
                          encode: (Row, inout CopyRowEncoder) -> Void) throws(PostgresError) -> Int {
        try streamCopy(into: table, columns: columns, rows: rows, encoder: CopyRowEncoder(), encode: encode)
    }

    /// COPY in binary format (`PostgresBinaryCopyEncodable` fields, each of its column's exact
    /// type): the server reads numbers and timestamps without parsing them.
    @discardableResult
    public func copyBinary<Row>(into table: String, columns: [String], rows: some Sequence<Row>,
                                encode: (Row, inout BinaryCopyRowEncoder) -> Void) throws(PostgresError) -> Int {
        try streamCopy(into: table, columns: columns, rows: rows, encoder: BinaryCopyRowEncoder(), encode: encode)
    }

    private func streamCopy<Row, Encoder: CopyFormat>(into table: String, columns: [String], rows: some Sequence<Row>,
                                                      encoder: Encoder, encode: (Row, inout Encoder) -> Void) throws(PostgresError) -> Int {
        let sql = "COPY \(table) (\(columns.joined(separator: ", "))) FROM STDIN\(Encoder.formatClause)"
        let handle = try liveHandle(sql)
        let start = PQexec(handle, sql)
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            defer { PQclear(start) }
            throw PostgresError(result: start, connection: handle, context: sql)
        }
        PQclear(start)
        var encoder = encoder
        encoder.buffer.reserveCapacity(1 << 16)
        encoder.buffer.append(contentsOf: Encoder.header)
        var failure: PostgresError?
        func send() {
            guard failure == nil, !encoder.buffer.isEmpty else { return }
            let status = encoder.buffer.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
            }
            if status != 1 {
                failure = PostgresError(kind: .connection, message: String(cString: PQerrorMessage(handle)).trimmed, context: sql)
            }
            encoder.buffer.removeAll(keepingCapacity: true)
        }
        for row in rows {
            encoder.beginRow(columns: columns.count)
            encode(row, &encoder)
            guard encoder.cells == columns.count else {
                failure = PostgresError(kind: .server, message: "a row has \(encoder.cells) values for \(columns.count) columns", context: sql)
                break
            }
            encoder.endRow()
            if encoder.buffer.count >= 1 << 16 { send() }
            if failure != nil { break }
        }
        if failure == nil { encoder.buffer.append(contentsOf: Encoder.trailer) }
        send()
        // Ending with an error message aborts the COPY, so nothing of a half-sent batch is kept.
        let end = failure.map { PQputCopyEnd(handle, $0.message) } ?? PQputCopyEnd(handle, nil)
        if end != 1 && failure == nil {
            failure = PostgresError(kind: .connection, message: String(cString: PQerrorMessage(handle)).trimmed, context: sql)
        }
        var copied = 0
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                copied = Int(String(cString: PQcmdTuples(result))) ?? 0
            } else if failure == nil || failure?.kind != .server {
                failure = PostgresError(result: result, connection: handle, context: sql)
            }
        }
        if let failure { throw failure }
        return copied
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    public func transaction<T>(isolation: IsolationLevel = .readCommitted, _ body: (PostgresConnection) throws -> T) throws -> T {
        try execute("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            if let handle, PQstatus(handle) == CONNECTION_OK { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    public enum IsolationLevel: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    private func liveHandle(_ sql: String) throws(PostgresError) -> OpaquePointer {
        guard let handle else { throw PostgresError(kind: .connection, message: "connection is closed", context: sql) }
        return handle
    }

    private func consume(_ result: OpaquePointer?, sql: String) throws(PostgresError) -> PostgresRows {
        defer { PQclear(result) }
        // The statement's summary is made only for an error: splitting a long statement's text
        // on every call was ~5% of the streamer's CPU.
        guard let result else { throw PostgresError(result: nil, connection: handle, context: Self.summary(of: sql)) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresRows(columns: [], values: [], affectedRows: Int(String(cString: PQcmdTuples(result))) ?? 0)
        case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
            let columnCount = Int(PQnfields(result))
            let rowCount = Int(PQntuples(result))
            let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
            var values: [[String?]] = []
            values.reserveCapacity(rowCount)
            for row in 0..<Int32(rowCount) {
                var fields: [String?] = []
                fields.reserveCapacity(columnCount)
                for column in 0..<Int32(columnCount) {
                    if PQgetisnull(result, row, column) == 1 {
                        fields.append(nil)
                    } else {
                        fields.append(String(cString: PQgetvalue(result, row, column)))
                    }
                }
                values.append(fields)
            }
            return PostgresRows(columns: columns, values: values, affectedRows: rowCount)
        default:
            throw PostgresError(result: result, connection: handle, context: Self.summary(of: sql))
        }
    }

    /// The first words of a statement, for error context (never the parameters).
    static func summary(of sql: String) -> String {
        let collapsed = sql.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return collapsed.count > 80 ? String(collapsed.prefix(80)) + "…" : collapsed
    }
}

/// COPY text format: backslash, tab, newline and carriage return escaped; NULL is `\N`.
/// Builds one COPY row: each `append` is the next column.
public struct CopyRowEncoder {
    @usableFromInline var buffer: [UInt8]
    @usableFromInline var cells = 0

    public init() {
        buffer = []
    }

    /// The row so far, in COPY's text format.
    public var text: String { String(decoding: buffer, as: UTF8.self) }
    /// Columns written so far.
    public var columns: Int { cells }

    /// Inlinable, so a caller's concrete column types are specialized: called generically from
    /// another module, every cell looked up its type's metadata (a sixth of the data sink's CPU).
    @inlinable
    public mutating func append(_ value: some PostgresEncodable) {
        if cells > 0 { buffer.append(UInt8(ascii: "\t")) }
        value.writeCopyText(to: &buffer)
        cells += 1
    }
}

/// What differs between COPY's text and binary streams.
protocol CopyFormat {
    var buffer: [UInt8] { get set }
    var cells: Int { get set }
    static var formatClause: String { get }
    static var header: [UInt8] { get }
    static var trailer: [UInt8] { get }
    mutating func beginRow(columns: Int)
    mutating func endRow()
}

extension CopyRowEncoder: CopyFormat {
    static let formatClause = ""
    static let header: [UInt8] = []
    static let trailer: [UInt8] = []
    mutating func beginRow(columns: Int) { cells = 0 }
    mutating func endRow() { buffer.append(UInt8(ascii: "\n")) }
}

extension BinaryCopyRowEncoder: CopyFormat {
    static let formatClause = " WITH (FORMAT binary)"
    mutating func beginRow(columns: Int) {
        cells = 0
        appendBigEndian(Int16(columns), to: &buffer)
    }
    mutating func endRow() {}
}

func appendCopyText(_ text: String?, to buffer: inout [UInt8]) {
    guard var text else {
        buffer.append(UInt8(ascii: "\\"))
        buffer.append(UInt8(ascii: "N"))
        return
    }
    text.withUTF8 { utf8 in
        // Runs of bytes that need no escaping are copied whole.
        var clean = 0
        for index in utf8.indices {
            let escaped: UInt8
            switch utf8[index] {
            case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
            case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
            case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
            case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
            default: continue
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<index]))
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(escaped)
            clean = index + 1
        }
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean...]))
    }
}

/// Passes optional Swift strings to C as `const char *const *` for the call's duration.
func withCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0)! } }
    defer { for pointer in pointers { free(pointer) } }
    return pointers.map { $0.map { UnsafePointer($0) } }.withUnsafeBufferPointer { body($0.baseAddress) }
}
