import Foundation
import Testing
@testable import Contracts

/// RFC 5545 local times (DESIGN §9): gaps read with the offset before them, overlaps at their
/// first occurrence, in zones with whole-hour, half-hour and 45-minute offsets.
@Suite("Local time")
struct LocalTimeTests {
    static func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test(arguments: [
        // zone, wall clock, the instant it means (UTC), how it was read
        ("Europe/Berlin", "2026-12-07T09:00", "2026-12-07T08:00:00Z", LocalTime.Reading.exact),
        ("Europe/Berlin", "2026-07-01T09:00", "2026-07-01T07:00:00Z", .exact),
        ("Europe/Berlin", "2026-03-29T01:59:59", "2026-03-29T00:59:59Z", .exact),
        ("Europe/Berlin", "2026-03-29T02:30", "2026-03-29T01:30:00Z", .gap),            // fires at 03:30 CEST
        ("Europe/Berlin", "2026-03-29T03:00", "2026-03-29T01:00:00Z", .exact),
        ("Europe/Berlin", "2026-10-25T02:30", "2026-10-25T00:30:00Z", .firstOfTwo),     // 02:30 CEST, not CET
        ("Europe/Berlin", "2026-10-25T03:00", "2026-10-25T02:00:00Z", .exact),
        ("America/New_York", "2026-03-08T02:30", "2026-03-08T07:30:00Z", .gap),         // 03:30 EDT
        ("America/New_York", "2026-11-01T01:30", "2026-11-01T05:30:00Z", .firstOfTwo),  // 01:30 EDT
        ("America/New_York", "2026-11-01T02:30", "2026-11-01T07:30:00Z", .exact),
        ("Australia/Lord_Howe", "2026-10-04T02:15", "2026-10-03T15:45:00Z", .gap),      // 30-minute gap: 02:45 at +11
        ("Australia/Lord_Howe", "2026-10-04T02:30", "2026-10-03T15:30:00Z", .exact),
        ("Australia/Lord_Howe", "2026-04-05T01:45", "2026-04-04T14:45:00Z", .firstOfTwo), // at +11 first, then at +10:30
        ("Australia/Lord_Howe", "2026-07-01T12:00", "2026-07-01T01:30:00Z", .exact),
        ("Asia/Kathmandu", "2026-12-07T09:00", "2026-12-07T03:15:00Z", .exact),
        ("Asia/Kathmandu", "2026-03-29T02:30", "2026-03-28T20:45:00Z", .exact),
        ("UTC", "2026-12-31T23:59:59", "2026-12-31T23:59:59Z", .exact),
    ])
    func readsWallClockTimesByRFC5545(_ zone: String, _ text: String, _ expected: String, _ reading: LocalTime.Reading) throws {
        let local = try #require(LocalTime(text))
        let result = local.instant(in: try #require(TimeZone(identifier: zone)))
        #expect(result.date == Self.utc(expected), "\(zone) \(text)")
        #expect(result.reading == reading, "\(zone) \(text)")
    }

    @Test(arguments: ["2026-12-07", "2026-12-07T24:00", "2026-12-07T09:60", "2026-02-29T09:00", "2026-12-07 09:00",
                      "2026-12-07T09:00Z", "2026-12-07T09:00:00.5", "2026-12-07T9:00", "2026-12-07T09:00:60"])
    func refusesWhatIsNotAWallClockTime(_ text: String) {
        #expect(LocalTime(text) == nil)
    }

    @Test func keepsSecondsAndPrintsThem() throws {
        #expect(try #require(LocalTime("2026-12-07T09:05")).description == "2026-12-07T09:05:00")
        #expect(try #require(LocalTime("2026-12-07T09:05:07")).description == "2026-12-07T09:05:07")
    }
}
