import Foundation
import Testing
@testable import Contracts

/// The hand-written coding of commands and events must be indistinguishable from the Codable one
/// (`MessageCoding`): the same bytes out, the same values in, the same documents refused.
@Suite("Bus message JSON, hand-written coding")
struct BusJSONTests {
    static let encoder = MessageCoding.encoder()
    static let decoder = MessageCoding.decoder()

    static var fullEvent: TodoEvent {
        TodoEvent(eventID: "evt-c-1", commandID: "c-1", eventType: .todoUpdated, groupID: "g-1", todoID: "t-1",
                  actorUserID: "u-1", actorName: "Zoë \"z\" \\ /", occurredAt: Date(timeIntervalSince1970: 1_795_000_000.125),
                  shardID: 511, groupVersion: 9_007_199_254_740_993, commandSequence: 18_446_744_073_709_551_615,
                  title: "tab\there, newline\n, bell \u{7}, emoji 😀, line sep \u{2028}", notes: "", status: .inProgress,
                  dueDate: "2026-12-01", assignee: "u-2", labels: ["a", "", "ü\u{0}"], position: -1.5e-7, version: 3,
                  createdBy: "u-1", createdByName: "zoe", createdAt: Date(timeIntervalSince1970: -1.0005), code: "not_allowed",
                  reason: "why", memberUserID: "u-3", memberUsername: "max", role: .admin, remindAt: "2026-03-29T02:30:00",
                  timezone: "Europe/Berlin", fireAt: Date(timeIntervalSince1970: 1_774_747_800.5), late: true)
    }

    static var fullCommand: TodoCommand {
        TodoCommand(commandID: "c-2", action: .moveTodo, groupID: "g-1", todoID: "t-1", actorUserID: "u-1", actorName: "a\u{1f}b",
                    issuedAt: Date(timeIntervalSince1970: 1_795_000_000.9999), title: "t", notes: "n", status: .done,
                    dueDate: "2026-01-31", assignee: "u-9", labels: [], position: 1e21, expectedVersion: -4,
                    memberUserID: "u-5", memberUsername: "eve", role: .owner, remindAt: "2026-12-24T09:00:00",
                    timezone: "Asia/Kathmandu", fireAt: Date(timeIntervalSince1970: 0), late: false)
    }

    /// A new field left out of the hand-written coding would be missed by a fixture that leaves it
    /// nil, so the fixtures must set every field.
    @Test func fixturesSetEveryField() {
        for value in [Mirror(reflecting: Self.fullEvent), Mirror(reflecting: Self.fullCommand)] {
            for child in value.children {
                if case Optional<Any>.none = child.value as Any? { Issue.record("\(child.label ?? "?") is nil") }
                let inner = Mirror(reflecting: child.value)
                if inner.displayStyle == .optional { #expect(inner.children.count == 1, "\(child.label ?? "?") is nil in the fixture") }
            }
        }
    }

    @Test func eventWithEveryFieldMatchesCodable() throws {
        let event = Self.fullEvent
        let expected = try Self.encoder.encode(event)
        #expect(String(decoding: event.jsonBytes(), as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        #expect(try TodoEvent(json: expected) == Self.decoder.decode(TodoEvent.self, from: expected))
    }

    @Test func commandWithEveryFieldMatchesCodable() throws {
        let command = Self.fullCommand
        let expected = try Self.encoder.encode(command)
        #expect(String(decoding: command.jsonBytes(), as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        #expect(try TodoCommand(json: expected) == Self.decoder.decode(TodoCommand.self, from: expected))
    }

    @Test func randomMessagesMatchCodable() throws {
        let random = SeededRandom(seed: 42)
        for _ in 0..<2000 {
            let event = random.event()
            let expected = try Self.encoder.encode(event)
            #expect(event.jsonBytes() == Array(expected), "\(String(decoding: expected, as: UTF8.self))")
            #expect(try TodoEvent(json: expected) == Self.decoder.decode(TodoEvent.self, from: expected))
            let command = random.command()
            let expectedCommand = try Self.encoder.encode(command)
            #expect(command.jsonBytes() == Array(expectedCommand), "\(String(decoding: expectedCommand, as: UTF8.self))")
            #expect(try TodoCommand(json: expectedCommand) == Self.decoder.decode(TodoCommand.self, from: expectedCommand))
        }
    }

    @Test func timestampsMatchFoundation() throws {
        let random = SeededRandom(seed: 7)
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -0.0005), Date(timeIntervalSince1970: 951_782_400.999_9),
                     Date(timeIntervalSince1970: 4_102_444_799.999), Date(timeIntervalSince1970: -62_135_596_800)]
        for _ in 0..<5000 { dates.append(random.date()) }
        for date in dates {
            let text = date.formatted(style)
            #expect(Timestamp.string(date) == text)
            #expect(Timestamp.parse(text) == (try style.parse(text)), "\(text)")
        }
        let parsed = ["2026-11-21T10:00:00Z", "2026-11-21T10:00:00.5Z", "2026-11-21T10:00:00.123456Z", "2026-11-21T12:30:00+02:30",
                      "2024-02-29T23:59:59.999-05:00"]
        for text in parsed {
            #expect(Timestamp.parse(text) == (try? style.parse(text)) ?? (try? Date.ISO8601FormatStyle().parse(text)), "\(text)")
        }
        // In the fast path's layout with a field out of range: refused (Foundation's parsers would
        // roll the time over into another day, so a message would change on a round trip).
        for outOfRange in ["2026-02-30T10:00:00Z", "2026-11-21T24:00:00Z", "2003-12-07T91:00:00.123Z", "2026-11-21T10:60:00Z",
                           "1500-13-01T00:00:00Z", "0000-01-01T00:00:00Z"] {
            #expect(Timestamp.parse(outOfRange) == nil, "\(outOfRange)")
        }
        // Other layouts are refused, however Foundation would read them.
        for odd in ["2026-11-21 10:00:00Z", "2026-11-21T10:00:00", "1013-2-017T09:00:01Z", "1500-01-01T00:00:00Zjunk", "yesterday"] {
            #expect(Timestamp.parse(odd) == nil, "\(odd)")
        }
        // Before 1600 (Julian, as Foundation writes it), in the layout: Foundation's reading.
        #expect(Timestamp.parse("1500-01-01T00:00:00.000Z") == (try style.parse("1500-01-01T00:00:00.000Z")))
        #expect(Timestamp.parse("yesterday") == nil)
    }

    @Test func readsWhatJSONDecoderReads() throws {
        let documents = [
            // Whitespace, unknown keys of every kind, escaped keys and values, nulls for optionals.
            " {\n\t\"v\" : 1 , \"command_id\":\"c\",\"act\\u0069on\":\"delete-todo\",\"group_id\":\"g\",\"actor_user_id\":\"u\",\"actor_name\":\"\\ud83d\\ude00\\n\\/\","
                + "\"issued_at\":\"2026-11-21T10:00:00Z\",\"extra\":{\"a\":[1,2.5e-3,{\"b\":null}],\"c\":true},\"title\":null,\"x\":-0} ",
            // Integers written as 1.0 and 1e0.
            #"{"v":1.0,"command_id":"c","action":"create-todo","group_id":"g","actor_user_id":"u","actor_name":"n","issued_at":"2026-11-21T10:00:00.1Z","expected_version":1e0,"position":0}"#,
            #"{"v":1,"command_id":"c","action":"create-todo","group_id":"g","actor_user_id":"u","actor_name":"n","issued_at":"2026-11-21T10:00:00Z","expected_version":22593239734733046E2,"position":2.5e-320}"#,
            #"{"v":100e-2,"command_id":"c","action":"create-todo","group_id":"g","actor_user_id":"u","actor_name":"n","issued_at":"2026-11-21T10:00:00Z","expected_version":-0.0,"position":-0}"#,
        ]
        for document in documents {
            let data = Data(document.utf8)
            #expect(try TodoCommand(json: data) == Self.decoder.decode(TodoCommand.self, from: data), "\(document)")
        }
    }

    @Test func refusesWhatJSONDecoderRefuses() {
        let valid = #"{"v":1,"command_id":"c","action":"delete-todo","group_id":"g","actor_user_id":"u","actor_name":"n","issued_at":"2026-11-21T10:00:00Z""#
        let documents = [
            "", " ", "null", "[]", "{", valid, valid + "}}", valid + "} x", 
            valid + #","title":"a\x"}"#, valid + #","title":"\ud800"}"#, valid + #","title":"\udc00x"}"#, valid + ",\"title\":\"\u{1}\"}",
            valid + #","position":01}"#, valid + #","position":1.}"#, valid + #","position":.5}"#, valid + #","position":-}"#,
            valid + #","position":1e}"#, valid + #","position":NaN}"#, valid + #","expected_version":1.5}"#,
            valid + #","expected_version":99999999999999999999}"#, valid + #","expected_version":1e19}"#,
            valid + #","position":1e-400}"#, valid + #","position":1e400}"#, valid + #","status":"archived"}"#, valid + #","labels":"a"}"#,
            valid + #","title":5}"#, valid + #","x":tru}"#, valid + #","x":[1 2]}"#,
            valid + ",\"x\":" + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}",
            valid.replacingOccurrences(of: #""v":1,"#, with: "") + "}", valid.replacingOccurrences(of: #""actor_name":"n""#, with: #""actor_name":null"#) + "}",
            valid.replacingOccurrences(of: "10:00:00Z", with: "10:00Z") + "}",
        ]
        for document in documents {
            let data = Data(document.utf8)
            if let read = try? Self.decoder.decode(TodoCommand.self, from: data) { Issue.record("JSONDecoder reads \(document) as \(read)") }
            #expect(throws: MessageJSONError.self, "\(document)") { try TodoCommand(json: data) }
        }
        let invalidUTF8 = Data(valid.utf8) + Data([UInt8(ascii: ","), .quote, UInt8(ascii: "t"), .quote, .colon, .quote, 0xC3, 0x28, .quote, .closeBrace])
        // Stricter than JSONDecoder (RFC 8259): no trailing commas, no invalid UTF-8.
        for document in [valid + ",}", valid + #","labels":["a",]}"#] {
            #expect(throws: MessageJSONError.self, "\(document)") { try TodoCommand(json: Data(document.utf8)) }
        }
        #expect(throws: MessageJSONError.self) { try TodoCommand(json: invalidUTF8) }
    }

    /// Damaged documents: whatever the hand-written reader accepts, JSONDecoder accepts with the
    /// same value. (JSONDecoder accepts more: trailing commas, bad escapes inside values it skips.)
    @Test func damagedDocumentsAreNeverReadDifferently() throws {
        let random = SeededRandom(seed: 3)
        let alphabet = Array(#"{}[]":,\\ 0123456789.-+eE"tfnul\/bu"#.utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xE2, 0x80]
        var accepted = 0
        for _ in 0..<5000 {
            var bytes = Array(try Self.encoder.encode(random.event()))
            for _ in 0..<random.int(1...3) {
                let index = random.int(0...(bytes.count - 1))
                switch random.int(0...2) {
                case 0: bytes[index] = alphabet[random.int(0...(alphabet.count - 1))]
                case 1: bytes.remove(at: index)
                default: bytes.insert(alphabet[random.int(0...(alphabet.count - 1))], at: index)
                }
            }
            let data = Data(bytes)
            guard let fast = try? TodoEvent(json: data) else { continue }
            accepted += 1
            let codable = Result { try Self.decoder.decode(TodoEvent.self, from: data) }
            if (try? codable.get()) != fast {
                Issue.record("\(String(decoding: bytes, as: UTF8.self))\nhand-written: \(fast)\nCodable: \(codable)")
            }
        }
        #expect(accepted > 100, "the damage should leave some documents valid")
    }
}

/// A small deterministic generator (SplitMix64), so a failure can be replayed.
final class SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    func bool() -> Bool { next() & 1 == 1 }

    func maybe<T>(_ value: @autoclosure () -> T) -> T? { bool() ? value() : nil }

    func string() -> String {
        let pieces = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1f}", "\u{7f}", "é", "€", "😀", "\u{2028}", "<b>", "ü"]
        return (0..<int(0...12)).map { _ in pieces[int(0...(pieces.count - 1))] }.joined()
    }

    func double() -> Double {
        switch int(0...4) {
        case 0: Double(int(-1000...1000))
        case 1: Double(int(-1_000_000...1_000_000)) / 1024
        case 2: { let value = Double(bitPattern: next()); return value.isFinite ? value : 0.5 }()
        case 3: Double(int(1...9)) * pow(10, Double(int(-30...30)))
        default: Double(next() % 1_000_000_007) / 7
        }
    }

    func date() -> Date {
        switch int(0...2) {
        // Now-ish with sub-millisecond noise, as Date() gives.
        case 0: Date(timeIntervalSinceReferenceDate: 785_000_000 + Double(next() % 100_000_000_000) / 1_000_000)
        case 1: Date(timeIntervalSince1970: Double(int(-2_000_000_000...4_000_000_000)) / 1000 * 997)
        default: Date(timeIntervalSince1970: Double(int(0...4_000_000_000)) + Double(int(0...999)) / 1000)
        }
    }

    func event() -> TodoEvent {
        TodoEvent(eventID: "evt-" + string(), commandID: string(), eventType: EventType.allCases[int(0...(EventType.allCases.count - 1))],
                  groupID: string(), todoID: maybe(string()), actorUserID: string(), actorName: string(), occurredAt: date(),
                  shardID: int(0...1023), groupVersion: Int64(int(1...Int.max)), commandSequence: maybe(next()),
                  title: maybe(string()), notes: maybe(string()), status: maybe(TodoStatus.allCases[int(0...2)]),
                  dueDate: maybe(string()), assignee: maybe(string()), labels: maybe((0..<int(0...3)).map { _ in string() }),
                  position: maybe(double()), version: maybe(Int64(bitPattern: next())), createdBy: maybe(string()),
                  createdByName: maybe(string()), createdAt: maybe(date()), code: maybe(string()), reason: maybe(string()),
                  memberUserID: maybe(string()), memberUsername: maybe(string()), role: maybe(GroupRole.allCases[int(0...2)]),
                  remindAt: maybe(string()), timezone: maybe(string()), fireAt: maybe(date()), late: maybe(int(0...1) == 1))
    }

    func command() -> TodoCommand {
        TodoCommand(commandID: string(), action: CommandAction.allCases[int(0...(CommandAction.allCases.count - 1))], groupID: string(),
                    todoID: maybe(string()), actorUserID: string(), actorName: string(), issuedAt: date(), title: maybe(string()),
                    notes: maybe(string()), status: maybe(TodoStatus.allCases[int(0...2)]), dueDate: maybe(string()),
                    assignee: maybe(string()), labels: maybe((0..<int(0...3)).map { _ in string() }), position: maybe(double()),
                    expectedVersion: maybe(Int64(bitPattern: next())), memberUserID: maybe(string()),
                    memberUsername: maybe(string()), role: maybe(GroupRole.allCases[int(0...2)]), remindAt: maybe(string()),
                    timezone: maybe(string()), fireAt: maybe(date()), late: maybe(int(0...1) == 1))
    }
}
