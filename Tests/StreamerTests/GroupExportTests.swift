import Testing
@testable import Streamer

@Suite("Group export")
struct GroupExportTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("a, b", "\"a, b\""),
        ("say \"hi\"", "\"say \"\"hi\"\"\""),
        ("two\nlines", "\"two\nlines\""),
        ("=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\""),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("", ""),
    ])
    func csvCellsAreQuotedAndNeverFormulas(_ text: String, _ cell: String) {
        #expect(GroupExport.csvText(text) == cell)
    }
}
