import Foundation
import Testing
@testable import Contracts

@Suite("Any JSON value, one-pass parser")
struct JSONValueTests {
    @Test func parsesEveryKindOfValue() throws {
        let document = #" {"s":"a\"b\u00e9😀","n":-2.5e3,"i":7,"t":true,"f":false,"z":null,"a":[1,"x",[],{}],"o":{"k":[null]}} "#
        let expected = JSONValue.object([
            "s": .string("a\"bé😀"), "n": .number(-2500), "i": .number(7), "t": .bool(true), "f": .bool(false), "z": .null,
            "a": .array([.number(1), .string("x"), .array([]), .object([:])]), "o": .object(["k": .array([.null])]),
        ])
        #expect(try JSONValue.parse(Data(document.utf8)) == expected)
    }

    /// Random documents read the same as through `JSONDecoder` and a `Decodable` value (the way
    /// command-api parsed request bodies before).
    @Test func randomDocumentsReadAsJSONDecoderReadsThem() throws {
        let random = SeededRandom(seed: 11)
        let decoder = JSONDecoder()
        for _ in 0..<2000 {
            let text = Self.write(Self.randomValue(random, depth: 0))
            let data = Data(text.utf8)
            let reference = try decoder.decode(DecodableValue.self, from: data).value
            #expect(try JSONValue.parse(data) == reference, "\(text)")
        }
    }

    @Test func refusesAmbiguousDeepOrBrokenDocuments() {
        let documents = [
            #"{"a":1,"a":2}"#, // which "a"?
            #"{"o":{"k":1,"k":1}}"#,
            String(repeating: "[", count: 65) + String(repeating: "]", count: 65),
            "", "{", #"{"a":1} x"#, #"{"a":1,}"#, "[1,]", #"{"a":tru}"#, #"{"a":01}"#, #"{"a":"\x"}"#, "{\"a\":\"\u{1}\"}",
        ]
        for document in documents {
            #expect(throws: MessageJSONError.self, "\(document)") { try JSONValue.parse(Data(document.utf8)) }
        }
        #expect(throws: MessageJSONError.self) { try JSONValue.parse(Data([UInt8(ascii: "\""), 0xC3, 0x28, UInt8(ascii: "\"")])) }
        // 64 levels are fine.
        #expect(throws: Never.self) { try JSONValue.parse(Data((String(repeating: "[", count: 64) + String(repeating: "]", count: 64)).utf8)) }
    }

    static func randomValue(_ random: SeededRandom, depth: Int) -> JSONValue {
        switch random.int(0...(depth < 4 ? 6 : 4)) {
        case 0: .null
        case 1: .bool(random.bool())
        case 2: .number(random.double())
        case 3, 4: .string(random.string())
        case 5: .array((0..<random.int(0...4)).map { _ in randomValue(random, depth: depth + 1) })
        default:
            .object(Dictionary((0..<random.int(0...4)).map { _ in (random.string(), randomValue(random, depth: depth + 1)) },
                               uniquingKeysWith: { first, _ in first }))
        }
    }

    static func write(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let number): "\(number)"
        case .string(let text): quoted(text)
        case .array(let items): "[" + items.map(write).joined(separator: ", ") + "]"
        case .object(let fields): "{" + fields.map { quoted($0.key) + ":" + write($0.value) }.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }
}

/// The reference: JSON values through `JSONDecoder`.
private struct DecodableValue: Decodable {
    let value: JSONValue

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { value = .null }
        else if let flag = try? container.decode(Bool.self) { value = .bool(flag) }
        else if let number = try? container.decode(Double.self) { value = .number(number) }
        else if let text = try? container.decode(String.self) { value = .string(text) }
        else if let items = try? container.decode([DecodableValue].self) { value = .array(items.map(\.value)) }
        else { value = .object(try container.decode([String: DecodableValue].self).mapValues(\.value)) }
    }
}
