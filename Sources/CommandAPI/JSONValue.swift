import Foundation

/// Any JSON value, for request bodies whose fields are checked one by one (so an unknown or
/// mistyped field is reported by name instead of as "invalid JSON").
enum JSONValue: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// The body as a JSON object, or a 400 that says what is wrong.
    static func object(from body: Data) throws(FieldError) -> [String: JSONValue] {
        guard !body.isEmpty else { throw FieldError(field: nil, "the body is empty; a JSON object is expected") }
        guard let value = try? decoder.decode(JSONValue.self, from: body) else {
            throw FieldError(field: nil, "the body is not valid JSON")
        }
        guard case .object(let object) = value else { throw FieldError(field: nil, "the body must be a JSON object") }
        return object
    }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    private static let decoder = JSONDecoder()
}

/// A request field that failed validation; the message names the field.
public struct FieldError: Error, Equatable, CustomStringConvertible {
    public let field: String?
    public let problem: String

    init(field: String?, _ problem: String) {
        self.field = field
        self.problem = problem
    }

    public var description: String { field.map { "\($0): \(problem)" } ?? problem }
}

/// Reads typed fields out of a JSON object and remembers which it read, so whatever is left over
/// is an unknown field.
struct FieldReader {
    private let object: [String: JSONValue]
    private var read: Set<String> = []

    init(_ object: [String: JSONValue]) {
        self.object = object
    }

    /// nil when absent or null.
    mutating func value(_ name: String) -> JSONValue? {
        read.insert(name)
        guard let value = object[name], value != .null else { return nil }
        return value
    }

    mutating func string(_ name: String) throws(FieldError) -> String? {
        guard let value = value(name) else { return nil }
        guard case .string(let text) = value else { throw FieldError(field: name, "must be a string, not \(value.typeName)") }
        return text
    }

    mutating func requiredString(_ name: String) throws(FieldError) -> String {
        guard let text = try string(name) else { throw FieldError(field: name, "is required") }
        return text
    }

    mutating func number(_ name: String) throws(FieldError) -> Double? {
        guard let value = value(name) else { return nil }
        guard case .number(let number) = value, number.isFinite else {
            throw FieldError(field: name, "must be a finite number, not \(value.typeName)")
        }
        return number
    }

    mutating func stringArray(_ name: String) throws(FieldError) -> [String]? {
        guard let value = value(name) else { return nil }
        guard case .array(let items) = value else { throw FieldError(field: name, "must be an array of strings, not \(value.typeName)") }
        var strings: [String] = []
        for item in items {
            guard case .string(let text) = item else { throw FieldError(field: name, "must contain only strings, not \(item.typeName)") }
            strings.append(text)
        }
        return strings
    }

    /// Fails on the first field (in name order, so the message is stable) that was never read.
    func rejectUnknown(context: String) throws(FieldError) {
        if let unknown = object.keys.filter({ !read.contains($0) }).sorted().first {
            throw FieldError(field: unknown, "unknown field for \(context)")
        }
    }
}
