import Foundation

/// A wall-clock time in a named time zone (`2026-03-29T02:30` in `Europe/Berlin`) and the instant it
/// means, by the rules of RFC 5545 §3.3.5 (DESIGN §9, reminders):
///
/// - a time that does not exist, inside a spring-forward gap, is read with the UTC offset in force
///   before the gap: 02:30 in a 02:00–03:00 gap is 03:30 after it;
/// - a time that exists twice, in a fall-back overlap, means its first occurrence.
///
/// Zones whose offsets are not whole hours (`Asia/Kathmandu` +05:45) and whose daylight saving
/// moves by half an hour (`Australia/Lord_Howe`) follow the same rules: only the zone database's
/// offsets are used, never an assumed hour.
public struct LocalTime: Sendable, Equatable, CustomStringConvertible {
    public let year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

    /// `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS`, a real day and time (no zone, no fraction).
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 16 || bytes.count == 19, bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
              TextRules.isISODate(String(decoding: bytes[0..<10], as: UTF8.self)) else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), hour < 24, minute < 60 else { return nil }
        var second = 0
        if bytes.count == 19 {
            guard bytes[16] == UInt8(ascii: ":"), let value = number(17..<19), value < 60 else { return nil }
            second = value
        }
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
    }

    /// The zones accepted: the IANA names of the system's zone database, and `UTC`. Offsets
    /// (`GMT+1`), abbreviations and anything else are not: only a named zone knows its rules.
    public static let knownZones: Set<String> = Set(TimeZone.knownTimeZoneIdentifiers).union(["UTC"])

    public static func isZone(_ name: String) -> Bool {
        name.utf8.count <= 64 && knownZones.contains(name) && TimeZone(identifier: name) != nil
    }

    public var description: String {
        String(format: "%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hour, minute, second)
    }

    /// The wall-clock reading taken as if it were UTC: seconds since 1970.
    var naiveSeconds: Int {
        let days = Int(Timestamp.days(fromCivil: Int64(year), Int64(month), Int64(day)))
        return days * 86_400 + hour * 3600 + minute * 60 + second
    }

    public enum Reading: Sendable, Equatable {
        /// The time exists once.
        case exact
        /// Inside a spring-forward gap: read with the offset before it (later than written).
        case gap
        /// Inside a fall-back overlap: its first occurrence.
        case firstOfTwo
    }

    /// The instant this wall-clock time means in `zone`, and how it was read.
    public func instant(in zone: TimeZone) -> (date: Date, reading: Reading) {
        let naive = naiveSeconds
        func offset(at seconds: Int) -> Int { zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds))) }
        // The offsets in force a day either side: a reading is valid with offset o when the zone's
        // offset at (naive − o) is o. (Zones change their offset at most once in any two days.)
        let before = offset(at: naive - 86_400 - 14 * 3600)
        let after = offset(at: naive + 86_400 + 14 * 3600)
        let valid = Set([before, after]).map { naive - $0 }.filter { offset(at: $0) == naive - $0 }.sorted()
        switch valid.count {
        case 0:
            return (Date(timeIntervalSince1970: TimeInterval(naive - before)), .gap)
        case 1:
            return (Date(timeIntervalSince1970: TimeInterval(valid[0])), .exact)
        default:
            return (Date(timeIntervalSince1970: TimeInterval(valid[0])), .firstOfTwo)
        }
    }
}
