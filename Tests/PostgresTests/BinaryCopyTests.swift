import Foundation
import Testing
@testable import Postgres

@Suite("Postgres binary COPY fields")
struct BinaryCopyTests {
    func field(_ value: some PostgresBinaryCopyEncodable) -> [UInt8] {
        var buffer: [UInt8] = []
        value.writeCopyBinary(to: &buffer)
        return buffer
    }

    @Test func numbersAreBigEndianAfterTheirLength() {
        #expect(field(Int64(258)) == [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2])
        #expect(field(Int64(-1)) == [0, 0, 0, 8] + [UInt8](repeating: 0xFF, count: 8))
        #expect(field(Int32(7)) == [0, 0, 0, 4, 0, 0, 0, 7])
        #expect(field(1.0) == [0, 0, 0, 8, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0])
        #expect(field(true) == [0, 0, 0, 1, 1])
    }

    @Test func nullIsLengthMinusOne() {
        #expect(field(Optional<String>.none) == [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(field(Optional<Int64>.none) == [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(field(Optional<Int64>.some(1)) == field(Int64(1)))
    }

    @Test func textIsItsUTF8Bytes() {
        #expect(field("") == [0, 0, 0, 0])
        // No escaping in binary: tabs, newlines and backslashes are plain bytes.
        #expect(field("é\t\\") == [0, 0, 0, 4, 0xC3, 0xA9, 0x09, 0x5C])
    }

    @Test func timestampsCountMicrosecondsFrom2000() {
        #expect(field(Date(timeIntervalSince1970: 946_684_800)) == [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(field(Date(timeIntervalSince1970: 946_684_800.000001)) == [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1])
        // Before 2000: negative.
        #expect(field(Date(timeIntervalSince1970: 946_684_799)) == [0, 0, 0, 8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0, 0xBD, 0xC0])
    }

    @Test func textArraysCarryTheirLayout() {
        #expect(field([String]()) == [0, 0, 0, 12, /* dims */ 0, 0, 0, 0, /* no nulls */ 0, 0, 0, 0, /* text */ 0, 0, 0, 25])
        #expect(field(["a", "bc"]) == [0, 0, 0, 31,
                                        0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25,
                                        /* length */ 0, 0, 0, 2, /* lower bound */ 0, 0, 0, 1,
                                        0, 0, 0, 1, 0x61, 0, 0, 0, 2, 0x62, 0x63])
    }

    @Test func rowsStartWithTheirFieldCount() {
        var row = BinaryCopyRowEncoder()
        row.beginRow(columns: 2)
        row.append(Int64(1))
        row.append(Optional<String>.none)
        #expect(row.columns == 2)
        #expect(row.bytes == [0, 2] + field(Int64(1)) + [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(BinaryCopyRowEncoder.header.count == 19)
        #expect(BinaryCopyRowEncoder.trailer == [0xFF, 0xFF])
    }
}
