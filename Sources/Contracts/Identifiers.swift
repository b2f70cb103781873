import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Ids the system assigns (commands, todos, groups): UUID version 7 (RFC 9562), a millisecond
/// Unix timestamp followed by 74 random bits, lowercase.
///
/// - Time-ordered: the ids of one period sit together in a B-tree (a command's outcome is stored
///   under `evt-<command_id>`, the primary key of `todo_events`), so inserts touch the index's
///   recent pages instead of a random page each.
/// - Cheap: the random bits come from one `getrandom` call, where Foundation's `UUID()` opens,
///   reads and closes `/dev/urandom` for every id (3% of command-api's CPU).
public enum Identifiers {
    public static func uuidV7(at date: Date = Date()) -> UUID {
        var bytes = (UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &bytes) { fillRandom($0) }
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000)) & 0xFFFF_FFFF_FFFF
        // Big-endian layout: 48-bit timestamp, version 7 in the next nibble, 12 random bits,
        // variant 0b10, 62 random bits.
        let high = milliseconds << 16 | 0x7000 | (bytes.0 & 0x0FFF)
        let low = bytes.1 & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        var bigEndian = (high.bigEndian, low.bigEndian)
        return withUnsafeBytes(of: &bigEndian) { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) }
    }

    /// A new id in its text form.
    public static func newID() -> String {
        uuidV7().lowercasedString
    }

    private static func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) {
        #if canImport(Glibc)
        arc4random_buf(buffer.baseAddress!, buffer.count)
        #else
        var generator = SystemRandomNumberGenerator()
        for index in buffer.indices { buffer[index] = generator.next() }
        #endif
    }
}

extension UUID {
    /// The canonical lowercase text form (`uuidString.lowercased()`), written directly: Foundation's
    /// `uuidString` formats each byte with `sprintf` and `lowercased()` copies it again (together
    /// ~3% of command-api's CPU, which needs three per command).
    public var lowercasedString: String {
        let hex: StaticString = "0123456789abcdef"
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                hex.withUTF8Buffer { digits in
                    var position = 0
                    for (index, byte) in bytes.enumerated() {
                        if index == 4 || index == 6 || index == 8 || index == 10 {
                            out[position] = UInt8(ascii: "-")
                            position += 1
                        }
                        out[position] = digits[Int(byte >> 4)]
                        out[position + 1] = digits[Int(byte & 0x0F)]
                        position += 2
                    }
                    return position
                }
            }
        }
    }
}
