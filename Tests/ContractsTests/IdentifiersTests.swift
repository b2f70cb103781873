import Foundation
import Testing
@testable import Contracts

@Suite("Assigned ids: UUID version 7")
struct IdentifiersTests {
    @Test func carriesTheTimeVersionAndVariant() throws {
        let date = Date(timeIntervalSince1970: 1_795_000_000.123)
        let text = Identifiers.uuidV7(at: date).uuidString.lowercased()
        let hex = text.replacingOccurrences(of: "-", with: "")
        #expect(UInt64(hex.prefix(12), radix: 16) == 1_795_000_000_123)
        #expect(Array(hex)[12] == "7")
        #expect(["8", "9", "a", "b"].contains(Array(hex)[16]))
    }

    @Test func idsOfLaterMillisecondsSortAfterAndAllDiffer() {
        // Half-way through each millisecond, clear of rounding at its edges.
        let ids = (0..<1000).map { Identifiers.uuidV7(at: Date(timeIntervalSince1970: (1_795_000_000_000 + Double($0) + 0.5) / 1000)) }
            .map { $0.uuidString.lowercased() }
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 })
        let start = Date(timeIntervalSince1970: 1_795_000_000)
        let sameMillisecond = (0..<10_000).map { _ in Identifiers.uuidV7(at: start).uuidString }
        #expect(Set(sameMillisecond).count == sameMillisecond.count)
        let id = Identifiers.newID()
        #expect(id == id.lowercased() && UUID(uuidString: id) != nil)
    }

    @Test func lowercasedTextEqualsFoundationsForm() {
        var uuids = (0..<2000).map { _ in UUID() } + (0..<100).map { _ in Identifiers.uuidV7() }
        uuids.append(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        uuids.append(UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)))
        for uuid in uuids {
            #expect(uuid.lowercasedString == uuid.uuidString.lowercased())
        }
    }
}
