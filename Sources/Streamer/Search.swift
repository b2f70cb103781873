import Contracts
import Foundation
import Postgres

/// `GET /api/v1/search?q=&limit=` (DESIGN §10): the caller's todos whose title, labels or notes
/// hold every word of `q`, the last word as a prefix, best first.
public struct SearchQuery: Sendable, Equatable {
    /// The words as typed: letters and digits only (everything else separates words), so nothing
    /// of `q` reaches the query syntax. Postgres lower-cases them for the query as it does the
    /// documents (one rule for both sides).
    public let words: [String]

    public static let maxCharacters = 200
    public static let maxWords = 8
    static let maxWordCharacters = 64

    public init(_ text: String) {
        var words: [String] = []
        var current = ""
        for scalar in text.unicodeScalars.prefix(Self.maxCharacters) {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                current.unicodeScalars.append(scalar)
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        self.words = words.prefix(Self.maxWords).map { String($0.prefix(Self.maxWordCharacters)) }
    }

    public var isEmpty: Bool { words.isEmpty }

    /// The `to_tsquery('simple', …)` text: every word, the last one as a prefix.
    public var tsquery: String {
        words.enumerated().map { index, word in "'\(word)'" + (index == words.count - 1 ? ":*" : "") }
            .joined(separator: " & ")
    }
}

public struct SearchResult: Encodable, Sendable, Equatable {
    public let kind = "todo"
    public let groupID: String
    public let groupName: String
    public let todoID: String
    public let title: String
    public let snippet: String
    public let status: String

    enum CodingKeys: String, CodingKey {
        case kind, groupID = "group_id", groupName = "group_name", todoID = "todo_id", title, snippet, status
    }

    /// Where the notes mention a word of the query (about 140 characters), or their beginning.
    static func snippet(notes: String, words: [String]) -> String {
        let flat = notes.split(whereSeparator: \.isNewline).joined(separator: " ")
        guard !flat.isEmpty else { return "" }
        let lower = flat.lowercased()
        let hit = words.lazy.compactMap { lower.range(of: $0) }.first
        let characters = Array(flat)
        let lowerCount = lower.count
        // Offsets by characters (lower-casing may change UTF-8 lengths, not the count of most text).
        let start = hit.map { lower.distance(from: lower.startIndex, to: $0.lowerBound) } ?? 0
        let from = lowerCount == characters.count ? max(0, start - 40) : 0
        let to = min(characters.count, from + 140)
        return (from > 0 ? "…" : "") + String(characters[from..<to]) + (to < characters.count ? "…" : "")
    }
}

extension ReadStore {
    /// The user's live todos that match, in live groups, best first: title matches above label
    /// matches above notes matches (`ts_rank` with the document's weights), then the most recently
    /// changed. Documents are stored with the rows (`todos.search_document`, migration 0011).
    public func search(_ query: SearchQuery, user: UUID, limit: Int) async throws -> [SearchResult] {
        guard !query.isEmpty else { return [] }
        return try await pool.withConnection { connection in
            try connection.queryPrepared("""
                SELECT t.group_id, g.name AS group_name, t.todo_id, t.title, t.notes, t.status
                FROM group_members m
                JOIN groups g ON g.group_id = m.group_id AND g.deleted_at IS NULL
                JOIN todos t ON t.group_id = m.group_id AND t.deleted_at IS NULL
                CROSS JOIN to_tsquery('simple', $2) AS q
                WHERE m.user_id = $1 AND t.search_document @@ q
                ORDER BY ts_rank(t.search_document, q) DESC, t.updated_at DESC, t.todo_id
                LIMIT $3
                """, user, query.tsquery, limit).map { row in
                SearchResult(groupID: try row.decode(String.self, "group_id"), groupName: try row.decode(String.self, "group_name"),
                             todoID: try row.decode(String.self, "todo_id"), title: try row.decode(String.self, "title"),
                             snippet: SearchResult.snippet(notes: try row.decode(String.self, "notes"), words: query.words.map { $0.lowercased() }),
                             status: try row.decode(String.self, "status"))
            }
        }
    }
}
