// libFuzzer target for the hand-written JSON reader (Sources/Contracts/JSON/JSONReader.swift),
// built with `-sanitize=fuzzer,address` by scripts/fuzz-json.sh (`make test-fuzz-json`).
//
// Every input goes through the three ways the services read JSON: `JSONValue.parse` (HTTP
// bodies), `TodoCommand(json:)` and `TodoEvent(json:)` (bus messages). Beyond "never crash, never
// touch memory it should not" (AddressSanitizer), each accepted document must survive a round
// trip: written back out and read again, it is the same value.
import Contracts
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)

    if let value = try? JSONValue.parse(bytes) {
        let written = Array(write(value).utf8)
        guard let again = try? JSONValue.parse(written) else {
            fatalError("the reader accepted a document but not its own rewriting: \(String(decoding: written, as: UTF8.self))")
        }
        guard again == value else { fatalError("a value changed on a round trip: \(value) → \(again)") }
    }
    if let command = try? TodoCommand(json: bytes) {
        guard var again = try? TodoCommand(json: command.jsonBytes()) else {
            fatalError("the reader accepted a command but not its own writing of it: \(command)")
        }
        again.issuedAt = sameMillisecond(again.issuedAt, command.issuedAt)
        guard again == command else { fatalError("a command changed on a round trip: \(command) → \(again)") }
    }
    if let event = try? TodoEvent(json: bytes) {
        guard var again = try? TodoEvent(json: event.jsonBytes()) else {
            fatalError("the reader accepted an event but not its own writing of it: \(event)")
        }
        again.occurredAt = sameMillisecond(again.occurredAt, event.occurredAt)
        again.createdAt = again.createdAt.map { sameMillisecond($0, event.createdAt ?? $0) }
        guard again == event else { fatalError("an event changed on a round trip: \(event) → \(again)") }
    }
    return 0
}

/// Timestamps carry milliseconds, written rounded down as Foundation's ISO 8601 formatter writes
/// them (the contract the hand-written coder matches). A `Date` is a Double of seconds, so a
/// parsed ".163" may be 0.16299999… and come back as ".162": the last millisecond may move on a
/// round trip (more so far from 2001). Within that, `original`.
func sameMillisecond(_ date: Date, _ original: Date) -> Date {
    abs(date.timeIntervalSince(original)) < 0.0015 ? original : date
}

/// A plain JSON writer for `JSONValue` (keys sorted; numbers as Swift prints them).
func write(_ value: JSONValue) -> String {
    switch value {
    case .null: return "null"
    case .bool(let flag): return flag ? "true" : "false"
    case .number(let number):
        if number == number.rounded(), abs(number) < 1e15 { return String(Int64(number)) }
        return "\(number)"
    case .string(let text): return quote(text)
    case .array(let items): return "[" + items.map(write).joined(separator: ",") + "]"
    case .object(let members):
        return "{" + members.keys.sorted().map { quote($0) + ":" + write(members[$0]!) }.joined(separator: ",") + "}"
    }
}

func quote(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
