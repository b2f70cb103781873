import Foundation
import Testing
@testable import Streamer

/// Every required vector of the Datastar SSE conformance set, byte for byte: `DATASTAR_VECTORS`
/// when set, else ../shared/conformance/datastar-sse beside the repository, else the copy in
/// tests/conformance/datastar-sse (so a clone anywhere runs them; the copy must equal ../shared
/// wherever both are there).
@Suite("Datastar SSE encoder")
struct DatastarSSETests {
    // Tests/StreamerTests/ → repository
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let shared = repository.deletingLastPathComponent().appendingPathComponent("shared/conformance/datastar-sse")
    static let copy = repository.appendingPathComponent("tests/conformance/datastar-sse")

    static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["DATASTAR_VECTORS"] { return URL(fileURLWithPath: override) }
        return FileManager.default.fileExists(atPath: shared.path) ? shared : copy
    }()

    @Test func theCopyInTheRepositoryIsTheSharedSet() throws {
        guard FileManager.default.fileExists(atPath: Self.shared.path) else { return } // no ../shared here: the copy is the set
        let files = try FileManager.default.subpathsOfDirectory(atPath: Self.shared.path).sorted()
        #expect(try FileManager.default.subpathsOfDirectory(atPath: Self.copy.path).sorted() == files)
        for file in files {
            let original = Self.shared.appendingPathComponent(file), copied = Self.copy.appendingPathComponent(file)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: original.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            #expect(FileManager.default.contentsEqual(atPath: original.path, andPath: copied.path), "\(file)")
        }
    }

    static var cases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { !$0.hasPrefix("executeScript") && !$0.contains(".") }.sorted()
    }

    @Test func vectorsArePresent() {
        // patch/remove elements, patch/remove signals, two events: 15 required cases.
        #expect(Self.cases.count == 15, "vectors expected at \(Self.directory.path)")
    }

    @Test(arguments: cases)
    func vector(_ name: String) throws {
        let folder = Self.directory.appendingPathComponent(name)
        let input = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("input.json"))) as? [String: Any]
        let expected = try String(contentsOf: folder.appendingPathComponent("output.txt"), encoding: .utf8)
        let events = try #require(input?["events"] as? [[String: Any]])
        #expect(events.map(Self.encode).joined() == expected)
    }

    /// Maps one input event to the encoder call a server would make.
    static func encode(_ event: [String: Any]) -> String {
        let id = event["eventId"] as? String
        let retry = event["retryDuration"] as? Int
        switch event["type"] as? String {
        case "patchSignals":
            let signals: String
            if let raw = event["signals-raw"] as? String {
                signals = raw
            } else {
                let data = try! JSONSerialization.data(withJSONObject: event["signals"] ?? [:], options: [.sortedKeys, .withoutEscapingSlashes])
                signals = String(decoding: data, as: UTF8.self)
            }
            return DatastarSSE.patchSignals(signals, onlyIfMissing: event["onlyIfMissing"] as? Bool ?? false, eventID: id, retryMilliseconds: retry)
        default:
            let mode = DatastarSSE.PatchMode(rawValue: event["mode"] as? String ?? "outer") ?? .outer
            let transition = event["useViewTransition"] as? Bool ?? false
            let elements = event["elements"] as? String ?? ""
            // Removing by selector alone is its own call in the Datastar SDKs (`removeElements`).
            if mode == .remove, elements.isEmpty, !transition, id == nil, retry == nil, let selector = event["selector"] as? String {
                return DatastarSSE.removeElements(selector: selector)
            }
            return DatastarSSE.patchElements(elements, selector: event["selector"] as? String, mode: mode,
                                             useViewTransition: transition, eventID: id, retryMilliseconds: retry)
        }
    }

    @Test func carriageReturnsCannotSplitAnEvent() {
        let text = DatastarSSE.patchElements("<b>a\r\nb</b>")
        #expect(text == "event: datastar-patch-elements\ndata: elements <b>a\ndata: elements b</b>\n\n")
    }

    @Test func linesEndOnlyWhereSSELinesEnd() {
        #expect(DatastarSSE.lines(of: "a\r\nb\rc\nd") == ["a", "b", "c", "d"])
        #expect(DatastarSSE.lines(of: "a\n\nb\n") == ["a", "", "b", ""])
        #expect(DatastarSSE.lines(of: "\r\n") == ["", ""])
        #expect(DatastarSSE.lines(of: "\r\r\n") == ["", "", ""])
        #expect(DatastarSSE.lines(of: "") == [""])
        // Other Unicode line separators are content to SSE: kept, not split on.
        #expect(DatastarSSE.lines(of: "é\u{2028}ü\u{85}x\u{0B}y") == ["é\u{2028}ü\u{85}x\u{0B}y"])
        // Multi-byte characters on both sides of a break survive intact.
        #expect(DatastarSSE.lines(of: "日本\n語👍🏽") == ["日本", "語👍🏽"])
    }

    @Test func aTodoEventWithABreakInItsJSONStaysOneEvent() throws {
        let text = DatastarSSE.event("todo-event", id: "3", data: DatastarSSE.lines(of: "{\"a\":\r\n1}"))
        #expect(text == "event: todo-event\nid: 3\ndata: {\"a\":\ndata: 1}\n\n")
    }
}
