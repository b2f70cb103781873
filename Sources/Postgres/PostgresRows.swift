/// The rows of a statement's result, copied out of libpq (text format).
public struct PostgresRows: Sendable, Sequence {
    public let columns: [String]
    let values: [[String?]]
    /// Rows changed by an INSERT/UPDATE/DELETE/COPY (`PQcmdTuples`), 0 otherwise.
    public let affectedRows: Int

    init(columns: [String], values: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.values = values
        self.affectedRows = affectedRows
    }

    public var count: Int { values.count }
    public var isEmpty: Bool { values.isEmpty }
    public var first: PostgresRow? { values.isEmpty ? nil : self[0] }

    public subscript(index: Int) -> PostgresRow {
        PostgresRow(columns: columns, values: values[index])
    }

    public func makeIterator() -> AnyIterator<PostgresRow> {
        var index = 0
        return AnyIterator {
            guard index < values.count else { return nil }
            defer { index += 1 }
            return self[index]
        }
    }
}

/// One row; decode its columns by name or position into Swift types.
public struct PostgresRow: Sendable {
    public let columns: [String]
    let values: [String?]

    public func isNull(_ column: String) throws -> Bool {
        values[try index(of: column)] == nil
    }

    /// The value of `column`; throws when it is NULL (decode `T?` for nullable columns).
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, _ column: String) throws -> T {
        let position = try index(of: column)
        guard let text = values[position] else {
            throw PostgresError(kind: .decoding, message: "column \(column) is NULL", context: "decode \(T.self)")
        }
        return try T(postgresText: text)
    }

    public func decode<T: PostgresDecodable>(_ type: T?.Type = T?.self, _ column: String) throws -> T? {
        guard let text = values[try index(of: column)] else { return nil }
        return try T(postgresText: text)
    }

    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, at position: Int) throws -> T {
        guard values.indices.contains(position), let text = values[position] else {
            throw PostgresError(kind: .decoding, message: "column \(position) is NULL or missing", context: "decode \(T.self)")
        }
        return try T(postgresText: text)
    }

    private func index(of column: String) throws -> Int {
        guard let index = columns.firstIndex(of: column) else {
            throw PostgresError(kind: .decoding, message: "no column \(column) in \(columns)", context: "decode")
        }
        return index
    }
}
