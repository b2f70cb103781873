import Foundation
import Testing
@testable import Postgres

@Suite("Postgres text values")
struct PostgresValueTests {
    @Test func arraysRoundTripThroughTheLiteralFormat() throws {
        let labels = ["plain", "with space", "quote\"d", "back\\slash", "comma,here", "{braces}", "", "NULL"]
        let literal = try #require(labels.postgresText)
        #expect(literal == #"{"plain","with space","quote\"d","back\\slash","comma,here","{braces}","","NULL"}"#)
        #expect(try [String](postgresText: literal) == labels)
        // What Postgres itself prints for text[] (unquoted where it can).
        #expect(try [String](postgresText: #"{a,"b c",d}"#) == ["a", "b c", "d"])
        #expect(try [String](postgresText: "{}") == [])
        #expect(throws: PostgresError.self) { try [String](postgresText: "{a,NULL}") }
        #expect(throws: PostgresError.self) { try [String](postgresText: "not an array") }
    }

    @Test func byteaUsesHexFormat() throws {
        let data = Data([0x00, 0x0F, 0xA0, 0xFF])
        #expect(data.postgresText == #"\x000fa0ff"#)
        #expect(try Data(postgresText: #"\x000fa0ff"#) == data)
        #expect(try Data(postgresText: #"\x000FA0FF"#) == data)
        #expect(throws: PostgresError.self) { try Data(postgresText: "000f") }
    }

    @Test func timestampsKeepMicroseconds() throws {
        let date = Date(timeIntervalSince1970: 1_795_000_000.123456)
        let text = try #require(date.postgresText)
        #expect(text == "2026-11-18 11:06:40.123456+00")
        let parsed = try Date(postgresText: text)
        #expect(abs(parsed.timeIntervalSince(date)) < 0.000_001)
        // Offsets, no fraction, and plain dates.
        #expect(try Date(postgresText: "2026-11-18 13:06:40+02") == Date(timeIntervalSince1970: 1_795_000_000))
        #expect(try Date(postgresText: "2026-11-18 05:36:40-05:30") == Date(timeIntervalSince1970: 1_795_000_000))
        #expect(try Date(postgresText: "2026-11-18") == Date(timeIntervalSince1970: 1_795_000_000 - 40_000))
        #expect(Date(timeIntervalSince1970: -0.5).postgresText == "1969-12-31 23:59:59.500000+00")
        #expect(throws: PostgresError.self) { try Date(postgresText: "yesterday") }
    }

    @Test func scalarsParseStrictly() throws {
        #expect(try Int(postgresText: "42") == 42)
        #expect(try Bool(postgresText: "t") == true)
        #expect(try Bool(postgresText: "f") == false)
        #expect(try Double(postgresText: "Infinity") == .infinity)
        #expect(try Double(postgresText: "1.5") == 1.5)
        #expect(Double.nan.postgresText == "NaN")
        #expect(throws: PostgresError.self) { try Int(postgresText: "4x") }
        #expect(throws: PostgresError.self) { try Bool(postgresText: "yes") }
        #expect(try UUID(postgresText: "3f1c7a52-5b0e-4a54-9d7e-0a4c1b2d3e4f").postgresText == "3f1c7a52-5b0e-4a54-9d7e-0a4c1b2d3e4f")
        #expect(Optional<Int>.none.postgresText == nil)
    }

    @Test func copyTextEscapesTheFormatsSpecialBytes() {
        var buffer: [UInt8] = []
        appendCopyText("a\tb\nc\\d\re", to: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"a\tb\nc\\d\re"#)
        buffer.removeAll()
        appendCopyText(nil, to: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"\N"#)
        buffer.removeAll()
        appendCopyText("\\\\ 😀 tail", to: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"\\\\ 😀 tail"#)
    }

    @Test func copyRowsWriteEachTypeAsItsText() {
        var encoder = CopyRowEncoder()
        let none: String? = nil
        encoder.append("a\tb")
        encoder.append(Int64(-42))
        encoder.append(none)
        encoder.append(Optional(2.5))
        encoder.append(Date(timeIntervalSince1970: 1_795_000_000.123456))
        encoder.append(["x", "y z"])
        #expect(encoder.cells == 6)
        #expect(String(decoding: encoder.buffer, as: UTF8.self)
                == "a\\tb\t-42\t\\N\t2.5\t2026-11-18 11:06:40.123456+00\t{\"x\",\"y z\"}")
    }

    /// The timestamp writer is hand-made (no formatter); it must agree with the C library's
    /// calendar for any instant, before 1970 too.
    @Test func timestampTextAgreesWithGmtime() {
        var state: UInt64 = 1
        for _ in 0..<2000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let micros = Int64(bitPattern: state >> 1) % 8_000_000_000_000_000 - 2_000_000_000_000_000
            let date = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
            let rounded = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
            var seconds = time_t(rounded >= 0 ? rounded / 1_000_000 : (rounded - 999_999) / 1_000_000)
            var parts = tm()
            gmtime_r(&seconds, &parts)
            let expected = String(format: "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                                  Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec),
                                  Int(rounded - Int64(seconds) * 1_000_000))
            #expect(date.postgresText == expected)
        }
    }

    @Test func errorsClassifyTheirSQLState() {
        func error(_ state: String) -> PostgresError { PostgresError(kind: .server, sqlState: state, message: "m", context: "c") }
        #expect(error("23505").isUniqueViolation)
        #expect(error("40001").isSerializationFailure && error("40001").isTransient)
        #expect(error("40P01").isDeadlock && error("40P01").isTransient)
        #expect(error("57P01").isTransient)
        #expect(!error("23505").isTransient)
        #expect(PostgresError(kind: .connection, message: "gone", context: "c").isTransient)
    }

    @Test func errorContextNeverContainsMoreThanTheStatementsStart() {
        let long = "SELECT " + String(repeating: "x, ", count: 100) + "1"
        #expect(PostgresConnection.summary(of: long).count <= 81)
        #expect(PostgresConnection.summary(of: "SELECT\n   1") == "SELECT 1")
    }
}
