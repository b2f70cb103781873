import Foundation

/// The bus's timestamps, `2026-11-21T19:42:13.123Z` (UTC, milliseconds), written and read
/// without a formatter: the same text as `Date.ISO8601FormatStyle(includingFractionalSeconds:
/// true)` (milliseconds rounded down), at a fraction of its cost.
enum Timestamp {
    /// Seconds from 1970-01-01 to 2001-01-01, Foundation's reference date.
    private static let referenceOffset: Int64 = 978_307_200

    /// Appends the 24 bytes of `date`'s timestamp; years outside 1…9999 use Foundation's formatter.
    static func append(_ date: Date, to bytes: inout [UInt8]) {
        let reference = date.timeIntervalSinceReferenceDate
        let whole = reference.rounded(.down)
        guard whole.isFinite, abs(whole) < 1e12 else {
            bytes.append(contentsOf: date.formatted(MessageCoding.timestampStyle).utf8)
            return
        }
        let millisecond = min(999, Int64((reference - whole) * 1000))
        let seconds = Int64(whole) + referenceOffset
        let days = seconds.floorDivided(by: 86_400)
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        // Before 1600 Foundation's calendar is Julian; leave those to it.
        guard (1600...9999).contains(year) else {
            bytes.append(contentsOf: date.formatted(MessageCoding.timestampStyle).utf8)
            return
        }
        appendDigits(year, count: 4, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(month, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(day, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: "T"))
        appendDigits(secondOfDay / 3600, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay / 60 % 60, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay % 60, count: 2, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        appendDigits(millisecond, count: 3, to: &bytes)
        bytes.append(UInt8(ascii: "Z"))
    }

    static func string(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` and nothing else: a field out of its
    /// range is refused, never rolled over into another time (Foundation's parsers read
    /// "T91:00" as the next days and "1013-2-017" as some date: found by the JSON reader's fuzz
    /// target, as messages that changed on a round trip). Years before 1600, which Foundation
    /// writes in the Julian calendar, are read by Foundation, in this layout only.
    static func parse(_ text: String) -> Date? {
        var text = text
        switch text.withUTF8({ parseFast($0) }) {
        case .date(let date): return date
        case .outOfRange, .otherShape: return nil
        case .beforeGregorian:
            return (try? MessageCoding.timestampStyle.parse(text)) ?? (try? Date.ISO8601FormatStyle().parse(text))
        }
    }

    private enum FastParse {
        case date(Date)
        /// `YYYY-MM-DDTHH:MM:SS…` with a field out of its range (or before 1600).
        case outOfRange
        /// Not this layout.
        case otherShape
        /// This layout, fields in range, a year before 1600.
        case beforeGregorian
    }

    private static func parseFast(_ s: UnsafeBufferPointer<UInt8>) -> FastParse {
        guard s.count >= 20, s[4] == UInt8(ascii: "-"), s[7] == UInt8(ascii: "-"), s[10] == UInt8(ascii: "T"),
              s[13] == UInt8(ascii: ":"), s[16] == UInt8(ascii: ":"),
              let year = digits(s, 0, 4), let month = digits(s, 5, 2), let day = digits(s, 8, 2),
              let hour = digits(s, 11, 2), let minute = digits(s, 14, 2), let second = digits(s, 17, 2)
        else { return .otherShape }
        guard year >= 1, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60,
              second < 60 else { return .outOfRange }
        if year < 1600 { return isLayout(s) ? .beforeGregorian : .otherShape }
        guard let date = parseRest(s, year: year, month: month, day: day, hour: hour, minute: minute, second: second) else {
            return .otherShape
        }
        return .date(date)
    }

    /// After the seconds: an optional `.digits`, then `Z` or `±HH:MM`, then the end.
    private static func isLayout(_ s: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 19
        if s[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < s.count, s[index].isDigit { index += 1 }
            guard index > start else { return false }
        }
        guard index < s.count else { return false }
        if s[index] == UInt8(ascii: "Z") { return index + 1 == s.count }
        return (s[index] == UInt8(ascii: "+") || s[index] == UInt8(ascii: "-")) && index + 6 == s.count
            && s[index + 3] == UInt8(ascii: ":") && digits(s, index + 1, 2).map { $0 < 24 } == true
            && digits(s, index + 4, 2).map { $0 < 60 } == true
    }

    private static func parseRest(_ s: UnsafeBufferPointer<UInt8>, year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64,
                                  second: Int64) -> Date? {
        var index = 19
        var fraction: Int64 = 0
        var scale: Int64 = 1
        if s[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < s.count, s[index].isDigit {
                if scale < 1_000_000_000 {
                    fraction = fraction * 10 + Int64(s[index] - UInt8(ascii: "0"))
                    scale *= 10
                }
                index += 1
            }
            guard index > start else { return nil }
        }
        guard index < s.count else { return nil }
        var offset: Int64 = 0
        switch s[index] {
        case UInt8(ascii: "Z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard index + 6 == s.count, s[index + 3] == UInt8(ascii: ":"),
                  let hours = digits(s, index + 1, 2), let minutes = digits(s, index + 4, 2), hours < 24, minutes < 60
            else { return nil }
            offset = (hours * 3600 + minutes * 60) * (s[index] == UInt8(ascii: "+") ? 1 : -1)
            index += 6
        default:
            return nil
        }
        guard index == s.count else { return nil }
        let seconds = days(fromCivil: year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset - referenceOffset
        return Date(timeIntervalSinceReferenceDate: Double(seconds) + Double(fraction) / Double(scale))
    }

    private static func digits(_ s: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int) -> Int64? {
        var value: Int64 = 0
        for index in start..<start + count {
            guard s[index].isDigit else { return nil }
            value = value * 10 + Int64(s[index] - UInt8(ascii: "0"))
        }
        return value
    }

    private static func appendDigits(_ value: Int64, count: Int, to bytes: inout [UInt8]) {
        var divisor: Int64 = 1
        for _ in 1..<count { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's `days_from_civil` and `civil_from_days` (proleptic Gregorian calendar).

    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = y.floorDivided(by: 400)
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = z.floorDivided(by: 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
