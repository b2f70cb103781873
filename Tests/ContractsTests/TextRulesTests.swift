import Contracts
import Foundation
import Testing

@Suite("Text rules (DESIGN §3, §5)")
struct TextRulesTests {
    let title = TextRules.title
    let notes = TextRules.notes

    @Test(arguments: [0x00, 0x01, 0x08, 0x0B, 0x0C, 0x1B, 0x1F, 0x7F, 0x80, 0x85, 0x9F] as [UInt32])
    func controlCharactersAreRefusedInSingleLineFields(_ value: UInt32) {
        let text = "a" + String(Unicode.Scalar(value)!) + "b"
        #expect(throws: TextRule.Problem.controlCharacter(value)) { try title.normalize(text) }
        #expect(throws: TextRule.Problem.controlCharacter(value)) { try notes.normalize(text) }
    }

    @Test func lineFeedAndTabOnlyInMultiLineFields() throws {
        #expect(try notes.normalize("a\nb\tc") == "a\nb\tc")
        #expect(throws: TextRule.Problem.controlCharacter(0x0A)) { try title.normalize("a\nb") }
        #expect(throws: TextRule.Problem.controlCharacter(0x09)) { try title.normalize("a\tb") }
        // CR LF and a lone CR are line feeds in a multi-line field, refused in a single-line one.
        #expect(try notes.normalize("a\r\nb\rc") == "a\nb\nc")
        #expect(throws: TextRule.Problem.controlCharacter(0x0D)) { try title.normalize("a\r\nb") }
    }

    @Test func noncharactersAndPrivateUseAreContent() throws {
        #expect(try title.normalize("a\u{FFFE}\u{10FFFF}\u{E000}") == "a\u{FFFE}\u{10FFFF}\u{E000}")
    }

    @Test func textIsStoredInNFC() throws {
        let decomposed = "Cafe\u{301}"
        let composed = "Caf\u{E9}"
        #expect(Array(try title.normalize(decomposed).unicodeScalars) == Array(composed.unicodeScalars))
        #expect(title.accepts(composed))
        #expect(!title.accepts(decomposed))
        // Other separators and emoji are content.
        #expect(try title.normalize("a\u{2028}b 👩‍👩‍👧") == "a\u{2028}b 👩‍👩‍👧")
    }

    @Test func limitsHoldInCharactersAndInBytes() throws {
        let rule = TextRule(maxCharacters: 5, maxBytes: 12)
        #expect(try rule.normalize("abcde") == "abcde")
        #expect(throws: TextRule.Problem.tooLong(maxCharacters: 5)) { try rule.normalize("abcdef") }
        // Four characters, but 16 bytes.
        #expect(throws: TextRule.Problem.tooManyBytes(maxBytes: 12)) { try rule.normalize("😀😀😀😀") }
        // "a" and 150 combining accents (the group name that was a 500): NFC makes it "á" and
        // 149 accents, 150 characters (code points, as JSON Schema and Postgres count them).
        let stacked = "a" + String(repeating: "\u{301}", count: 150)
        #expect(stacked.count == 1)
        #expect(throws: TextRule.Problem.tooLong(maxCharacters: 100)) { try TextRules.groupName.normalize(stacked) }
        #expect(try TextRules.groupName.normalize("a" + String(repeating: "\u{301}", count: 100)).unicodeScalars.count == 100)
        // A family of four is one emoji of seven code points.
        #expect(throws: TextRule.Problem.tooLong(maxCharacters: 5)) { try TextRule(maxCharacters: 5, maxBytes: 100).normalize("👩‍👩‍👧‍👦") }
        #expect(try TextRule(maxCharacters: 5, maxBytes: 20).normalize("👩‍👩") == "👩‍👩")
    }

    @Test func problemsNeverEchoTheText() {
        let problem = TextRule.Problem.controlCharacter(0)
        #expect(problem.description == "must not contain control characters (found U+0000)")
    }

    @Test func identifiersUsernamesAndDates() {
        #expect(TextRules.isValidID("abc_DEF-123"))
        #expect(!TextRules.isValidID(""))
        #expect(!TextRules.isValidID("a\u{0}b"))
        #expect(!TextRules.isValidID("a.b"))
        #expect(!TextRules.isValidID(String(repeating: "a", count: 129)))
        #expect(TextRules.isValidUsername("a_b.c-9"))
        #expect(!TextRules.isValidUsername("Al"))
        #expect(TextRules.isISODate("2024-02-29"))
        #expect(!TextRules.isISODate("2023-02-29"))
        #expect(!TextRules.isISODate("0000-01-01"))
        #expect(!TextRules.isISODate("2024-1-011"))
        #expect(!TextRules.isISODate("+202-01-01"))
        #expect(!TextRules.isISODate("２０２４-01-01"))
    }

    @Test func theEngineFindsTheFirstBrokenFieldOfACommand() {
        var command = TodoCommand(commandID: "c1", action: .createTodo, groupID: "g1", todoID: "t1", actorUserID: "u1",
                                  actorName: "alice", issuedAt: Date(), title: "fine")
        #expect(command.textProblem == nil)
        #expect(command.hasStorableIdentity)
        command.title = "a\u{0}b"
        #expect(command.textProblem == "title: must not contain control characters (found U+0000)")
        command.title = "Cafe\u{301}"
        #expect(command.textProblem?.hasPrefix("title: is not in its normalized form") == true)
        command.title = "ok"
        command.labels = ["\u{0}"]
        #expect(command.textProblem?.hasPrefix("labels:") == true)
        command.labels = nil
        command.dueDate = "2026-02-30"
        #expect(command.textProblem == "due_date: must be a date like 2026-12-31")
        command.dueDate = nil
        command.actorName = "al\u{0}ice"
        #expect(!command.hasStorableIdentity)
    }
}
