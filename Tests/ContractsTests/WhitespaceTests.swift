import Contracts
import Foundation
import Testing

@Suite("Whitespace trimming shared by command-api and the engine")
struct WhitespaceTests {
    @Test func whitespaceTrimmingMatchesFoundationsSetOnEveryScalar() {
        var differing: [UInt32] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let text = "a" + String(scalar)
            if text.trimmingWhitespace() != text.trimmingCharacters(in: .whitespacesAndNewlines) { differing.append(value) }
        }
        #expect(differing.isEmpty)
        for text in ["", " ", "\u{3000}a b\u{2028}", "\t\n x \r\n", "plain", "  é  ", "\u{85}ü\u{A0}", "a\u{200B}"] {
            #expect(text.trimmingWhitespace() == text.trimmingCharacters(in: .whitespacesAndNewlines), "\(text.debugDescription)")
        }
    }
}
