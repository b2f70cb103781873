import Contracts
import HTTPAPI
import Foundation

/// Request bodies are parsed into `Contracts.JSONValue` by the bus messages' strict one-pass
/// reader (through `JSONDecoder` and a `Decodable` enum, parsing was a tenth of command-api's CPU).
extension JSONValue {
    /// The body as a JSON object, or a 400 that says what is wrong.
    static func object(from body: Data) throws(FieldError) -> [String: JSONValue] {
        guard !body.isEmpty else { throw FieldError(field: nil, "the body is empty; a JSON object is expected") }
        let value: JSONValue
        do {
            value = try JSONValue.parse(body)
        } catch {
            throw FieldError(field: nil, "the body is not valid JSON: \(error)")
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
}

/// A request field that failed validation; the message names the field.
public struct FieldError: Error, Equatable, CustomStringConvertible {
    public enum Status: Sendable, Equatable {
        /// 400: the field is malformed.
        case badRequest
        /// 422: well-formed, but past a cap (labels per todo).
        case unprocessable
    }

    public let field: String?
    public let problem: String
    public let status: Status

    init(field: String?, _ problem: String, status: Status = .badRequest) {
        self.field = field
        self.problem = problem
        self.status = status
    }

    public var description: String { field.map { "\($0): \(problem)" } ?? problem }

    /// The client's error: 400 or 422, naming the field.
    var apiError: APIError {
        APIError(status == .unprocessable ? .unprocessableContent : .badRequest, description)
    }
}

/// Reads typed fields out of a JSON object and remembers which it read, so whatever is left over
/// is an unknown field.
struct FieldReader {
    private let object: [String: JSONValue]
    /// The names read that the object has (a subset of its keys).
    private var read: Set<String> = []

    init(_ object: [String: JSONValue]) {
        self.object = object
    }

    /// nil when absent or null.
    mutating func value(_ name: String) -> JSONValue? {
        guard let value = object[name] else { return nil }
        read.insert(name)
        return value == .null ? nil : value
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
        guard read.count < object.count else { return }
        if let unknown = object.keys.filter({ !read.contains($0) }).sorted().first {
            throw FieldError(field: unknown, "unknown field for \(context)")
        }
    }
}
