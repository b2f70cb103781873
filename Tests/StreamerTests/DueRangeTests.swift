import HTTPAPI
import Testing
@testable import Streamer

@Suite("Calendar range")
struct DueRangeTests {
    @Test func daysAreCountedAcrossMonthsLeapYearsAndCenturies() {
        #expect(DueRange.dayNumber("1970-01-01") == 0)
        #expect(DueRange.dayNumber("2000-03-01")! - DueRange.dayNumber("2000-02-28")! == 2, "2000 is a leap year")
        #expect(DueRange.dayNumber("1900-03-01")! - DueRange.dayNumber("1900-02-28")! == 1, "1900 is not")
        #expect(DueRange.dayNumber("2026-12-07") == 20_794)
        #expect(DueRange.dayNumber("2026-02-29") == nil && DueRange.dayNumber("2026-1-07") == nil)
    }

    @Test(arguments: [
        ("2026-12-01", "2027-03-02", true),   // 92 days, both included
        ("2026-12-01", "2027-03-03", false),  // 93
        ("2026-12-07", "2026-12-07", true),
        ("2026-12-08", "2026-12-07", false),
        ("2026-02-30", "2026-03-01", false),
        ("2026-12-01", "soon", false),
    ])
    func rangesAreRealDaysInOrderAtMost92Apart(_ from: String, _ to: String, _ accepted: Bool) {
        let parsed = try? DueRange.parse(from: from, to: to)
        #expect((parsed != nil) == accepted, "\(from)…\(to)")
    }

    @Test func bothDaysOrNeither() throws {
        #expect(try DueRange.parse(from: nil, to: nil) == nil)
        #expect(throws: APIError.self) { try DueRange.parse(from: "2026-12-01", to: nil) }
        #expect(throws: APIError.self) { try DueRange.parse(from: nil, to: "2026-12-01") }
    }
}
