import Foundation
import Testing
@testable import Sharding

@Suite("CRC-32 (IEEE, as zlib)")
struct CRC32Tests {
    @Test("published check values", arguments: [
        ("", UInt32(0x0000_0000)),
        ("a", UInt32(0xE8B7_BE43)),
        ("abc", UInt32(0x3524_41C2)),
        ("123456789", UInt32(0xCBF4_3926)),
        ("The quick brown fox jumps over the lazy dog", UInt32(0x414F_A339)),
    ])
    func checkValues(input: String, expected: UInt32) {
        #expect(CRC32.checksum(input) == expected)
    }

    @Test func continuingFromASeedEqualsOnePass() {
        let whole = CRC32.checksum("hello, world")
        let split = CRC32.checksum(Array("world".utf8), seed: CRC32.checksum("hello, "))
        #expect(whole == split)
    }

    @Test func utf8BytesAreHashedNotScalars() {
        // "é" is two UTF-8 bytes (C3 A9); zlib.crc32(b"\xc3\xa9") == 0x0E048D3E.
        #expect(CRC32.checksum("é") == 0x0E04_8D3E)
    }
}

@Suite("Shard function")
struct ShardTests {
    @Test func shardIsCRCModulo1024() throws {
        let id = try GroupID("123456789")
        #expect(Shard.of(id) == Int(0xCBF4_3926 % 1024))
        #expect(Shard.of(id) == 294)
    }

    @Test func spreadsEvenlyOverAllShards() throws {
        var counts = [Int](repeating: 0, count: Shard.count)
        let n = 102_400
        for i in 0..<n {
            counts[Shard.of(try GroupID("group-\(i)"))] += 1
        }
        // Expected 100 per shard; a fair hash keeps every shard well inside [50, 150].
        #expect(counts.min()! >= 50)
        #expect(counts.max()! <= 150)
        #expect(counts.allSatisfy { $0 > 0 })
    }

    @Test func isDeterministic() throws {
        let id = try GroupID("3f1c7a52-5b0e-4a54-9d7e-0a4c1b2d3e4f")
        #expect(Shard.of(id) == Shard.of(try GroupID(id.rawValue)))
        #expect(try Shard.of(rawGroupID: id.rawValue) == id.shard)
    }
}

@Suite("Group ids")
struct GroupIDTests {
    @Test("rejected ids", arguments: [
        ("", GroupIDError.empty),
        ("a.b", .forbiddenCharacter(".")),
        ("a*", .forbiddenCharacter("*")),
        (">", .forbiddenCharacter(">")),
        ("a b", .forbiddenCharacter(" ")),
        ("tab\there", .forbiddenCharacter("\t")),
        ("new\nline", .forbiddenCharacter("\n")),
        ("nul\u{0}", .forbiddenCharacter("\u{0}")),
        ("nbsp\u{00A0}", .forbiddenCharacter("\u{00A0}")),
        (String(repeating: "x", count: 129), .tooLong(bytes: 129)),
        (String(repeating: "é", count: 65), .tooLong(bytes: 130)),
    ])
    func rejects(raw: String, expected: GroupIDError) {
        #expect(throws: expected) { try GroupID(raw) }
    }

    /// ASCII ids are checked byte by byte; the verdict must be the Unicode rule's for every ASCII
    /// character, and a non-ASCII id still gets the Unicode rule everywhere.
    @Test func asciiFastPathAgreesWithTheUnicodeRule() {
        for value in UInt8(0)..<0x80 {
            let scalar = Unicode.Scalar(value)
            let forbidden = ".*>".unicodeScalars.contains(scalar) || scalar.properties.isWhitespace
                || scalar.properties.generalCategory == .control
            #expect((try? GroupID("a\(Character(scalar))b")) == nil ? forbidden : !forbidden, "\(value)")
        }
        #expect(throws: GroupIDError.forbiddenCharacter(" ")) { try GroupID("é a") }
        #expect(throws: GroupIDError.forbiddenCharacter("\u{2003}")) { try GroupID("ab\u{2003}") }
    }

    @Test("accepted ids", arguments: [
        "g", "group-1", "3f1c7a52-5b0e-4a54-9d7e-0a4c1b2d3e4f", "équipe_ü",
        String(repeating: "x", count: 128),
    ])
    func accepts(raw: String) throws {
        #expect(try GroupID(raw).rawValue == raw)
    }
}

@Suite("Subjects")
struct SubjectTests {
    @Test func buildsTheContractSubjects() throws {
        let id = try GroupID("123456789")
        #expect(GroupSubject.command(id).subject == "app.command.294.group.123456789")
        #expect(GroupSubject.event(id).subject == "app.event.294.group.123456789")
        #expect(SubjectKind.command.wildcard == "app.command.>")
        #expect(SubjectKind.event.streamName == "EVENTS")
    }

    @Test func roundTrips() throws {
        for i in 0..<500 {
            for kind in SubjectKind.allCases {
                let subject = GroupSubject(kind, groupID: try GroupID("g-\(i)"))
                let parsed = try GroupSubject(parsing: subject.subject)
                #expect(parsed == subject)
            }
        }
    }

    @Test("malformed subjects", arguments: [
        "app.command.1.group", "app.query.294.group.123456789", "app.command.x.group.g",
        "app.command.0294.group.123456789", "app.command.294.groups.123456789",
        "xyz.command.294.group.123456789", "app.command.294.group.a.b", "app.command.-1.group.g",
        "app.command.1024.group.g",
    ])
    func rejectsMalformed(subject: String) {
        #expect(throws: SubjectParseError.self) { try GroupSubject(parsing: subject) }
    }

    @Test func rejectsAShardThatDoesNotMatchTheGroup() {
        #expect(throws: SubjectParseError.shardMismatch(subject: "app.event.1.group.123456789", expected: 294, found: 1)) {
            try GroupSubject(parsing: "app.event.1.group.123456789")
        }
    }

    /// The parser before it became a one-pass scan: split on dots, compare and convert the tokens.
    static func referenceParse(_ subject: String) -> Result<GroupSubject, SubjectParseError> {
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        guard tokens.count == 5, tokens[0] == "app", tokens[3] == "group",
              let kind = SubjectKind(rawValue: String(tokens[1])),
              let shard = Int(tokens[2]), String(shard) == tokens[2], (0..<Shard.count).contains(shard)
        else { return .failure(.malformed(subject)) }
        let groupID: GroupID
        do { groupID = try GroupID(String(tokens[4])) } catch { return .failure(.invalidGroupID(error)) }
        guard groupID.shard == shard else { return .failure(.shardMismatch(subject: subject, expected: groupID.shard, found: shard)) }
        return .success(GroupSubject(kind, groupID: groupID))
    }

    @Test func parsesExactlyAsTheSplittingParserDid() throws {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["app", "command", "event", "group", ".", "0", "00", "7", "294", "1023", "1024", "-1", "+5", "x", "é", " ", "*",
                      "123456789", "g-1", "", "..", "app.command.", ".group."]
        var subjects: [String] = []
        for index in 0..<3000 {
            let group = try GroupID(index % 3 == 0 ? "grp-\(index)" : "123456789")
            let valid = GroupSubject(index % 2 == 0 ? .command : .event, groupID: group).subject
            // Valid subjects, their shard token changed, and random concatenations of pieces.
            subjects.append(valid)
            subjects.append(valid.replacingOccurrences(of: ".\(group.shard).", with: ".\(Int.random(in: 0...1100, using: &generator)).") )
            subjects.append((0..<Int.random(in: 1...9, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined())
            subjects.append("app.event.\(pieces.randomElement(using: &generator)!).group.\(pieces.randomElement(using: &generator)!)")
        }
        for subject in subjects {
            let parsed: Result<GroupSubject, SubjectParseError>
            do { parsed = .success(try GroupSubject(parsing: subject)) } catch { parsed = .failure(error) }
            #expect(parsed == Self.referenceParse(subject), "\(subject.debugDescription)")
        }
    }
}
