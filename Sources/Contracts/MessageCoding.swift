import Foundation

/// JSON coding shared by every producer and consumer of bus messages: snake_case keys are spelled
/// out in each type's `CodingKeys`, dates are ISO 8601 in UTC with milliseconds
/// (`2026-11-21T19:42:13.123Z`), and nil fields are left out.
public enum MessageCoding {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(timestampStyle))
        }
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = try? timestampStyle.parse(text) { return date }
            if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\(text.debugDescription) is not an ISO 8601 timestamp")
        }
        return decoder
    }

    /// Shared instances for hot paths (one per command or event); coders are safe to share.
    public static let sharedEncoder = encoder()
    public static let sharedDecoder = decoder()

    static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
}
