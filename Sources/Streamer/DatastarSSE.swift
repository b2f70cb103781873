/// The server side of the Datastar SSE protocol (the subset the workspace uses): patch elements,
/// remove elements, patch signals, plus plain events (`todo-event`) and comments (heartbeats).
/// Byte-exact with `../shared/conformance/datastar-sse` (see DatastarSSETests); defaults are left
/// off the wire: retry 1000 ms, mode `outer`, useViewTransition false, onlyIfMissing false.
public enum DatastarSSE {
    public static let defaultRetryMilliseconds = 1000

    public enum PatchMode: String, Sendable, CaseIterable {
        case outer, inner, replace, prepend, append, before, after, remove
    }

    /// `event: datastar-patch-elements` with `selector`, `mode`, `useViewTransition`, then one
    /// `elements` line per line of HTML.
    public static func patchElements(_ elements: String, selector: String? = nil, mode: PatchMode = .outer,
                                     useViewTransition: Bool = false, eventID: String? = nil,
                                     retryMilliseconds: Int? = nil) -> String {
        var data: [String] = []
        if let selector, !selector.isEmpty { data.append("selector \(selector)") }
        if mode != .outer { data.append("mode \(mode.rawValue)") }
        if useViewTransition { data.append("useViewTransition true") }
        appendLines(of: elements, prefix: "elements ", to: &data)
        return event("datastar-patch-elements", id: eventID, retryMilliseconds: retryMilliseconds, data: data)
    }

    /// Removes the elements matching `selector` (`mode remove`, then the selector).
    public static func removeElements(selector: String, eventID: String? = nil, retryMilliseconds: Int? = nil) -> String {
        event("datastar-patch-elements", id: eventID, retryMilliseconds: retryMilliseconds,
              data: ["mode remove", "selector \(selector)"])
    }

    /// `event: datastar-patch-signals`; `signalsJSON` is a JSON object (null values remove signals).
    public static func patchSignals(_ signalsJSON: String, onlyIfMissing: Bool = false, eventID: String? = nil,
                                    retryMilliseconds: Int? = nil) -> String {
        var data: [String] = []
        if onlyIfMissing { data.append("onlyIfMissing true") }
        appendLines(of: signalsJSON, prefix: "signals ", to: &data)
        return event("datastar-patch-signals", id: eventID, retryMilliseconds: retryMilliseconds, data: data)
    }

    /// Any named event; each line of `data` becomes one `data:` line.
    public static func event(_ name: String, id: String? = nil, retryMilliseconds: Int? = nil, data: [String]) -> String {
        var text = "event: \(name)\n"
        if let id, !id.isEmpty { text += "id: \(id)\n" }
        if let retryMilliseconds, retryMilliseconds != defaultRetryMilliseconds { text += "retry: \(retryMilliseconds)\n" }
        for line in data { text += "data: \(line)\n" }
        return text + "\n"
    }

    /// A comment line (heartbeats: `: ping`); clients ignore it, proxies see traffic.
    public static func comment(_ text: String) -> String {
        ": \(text)\n\n"
    }

    /// A bare `retry:` field, sent once at the start of a stream.
    public static func retry(milliseconds: Int) -> String {
        "retry: \(milliseconds)\n\n"
    }

    private static func appendLines(of text: String, prefix: String, to data: inout [String]) {
        guard !text.isEmpty else { return }
        for line in lines(of: text) { data.append(prefix + line) }
    }

    /// `text` split into SSE lines: at `\r\n`, `\r` or `\n`, the line ends SSE knows (a line
    /// break inside a data field would end it), and nowhere else. One pass over the UTF-8 bytes:
    /// splitting by `Character` walked grapheme clusters and was a third of the streamer's CPU.
    public static func lines(of text: String) -> [String] {
        var utf8 = text
        return utf8.withUTF8 { bytes in
            let (lf, cr) = (UInt8(ascii: "\n"), UInt8(ascii: "\r"))
            var lines: [String] = []
            var start = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == lf || byte == cr {
                    lines.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
                    if byte == cr, index + 1 < bytes.count, bytes[index + 1] == lf { index += 1 }
                    start = index + 1
                }
                index += 1
            }
            // No break at all (an event's JSON, a one-line fragment): the text itself, not a copy.
            if start == 0 { return [text] }
            lines.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]), as: UTF8.self))
            return lines
        }
    }
}
