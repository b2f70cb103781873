import Contracts
import Foundation
import Postgres
import Testing
@testable import DataSink

@Suite("Sink: decoding events for the projection")
struct ProjectedEventTests {
    func event(_ configure: (inout TodoEvent) -> Void = { _ in }) -> TodoEvent {
        var event = TodoEvent(eventID: "evt-c1", commandID: "c1", eventType: .todoCreated, groupID: "g", todoID: "t",
                              actorUserID: "u", actorName: "ann", occurredAt: Date(timeIntervalSince1970: 1_795_000_000),
                              shardID: 3, groupVersion: 7, title: "T", status: .done, labels: ["a"], position: 2, version: 1,
                              createdBy: "u")
        configure(&event)
        return event
    }

    @Test func stagingRowsMatchTheStagingColumns() throws {
        let payload = try MessageCoding.encoder().encode(event())
        let projected = try ProjectedEvent(payload: payload, streamSequence: 42)
        var row = BinaryCopyRowEncoder()
        projected.writeStagingRow(to: &row)
        #expect(row.columns == ProjectionWriter.stagingColumns.count)
        #expect(projected.streamSequence == 42)
        #expect(projected.json == String(decoding: payload, as: UTF8.self), "the payload is stored as received")
        let columns = Dictionary(uniqueKeysWithValues: zip(ProjectionWriter.stagingColumns, fields(of: row.bytes)))
        #expect(columns["event_id"] == .some(Array("evt-c1".utf8)))
        #expect(columns["group_version"] == .some([0, 0, 0, 0, 0, 0, 0, 7]), "bigint")
        #expect(columns["stream_seq"] == .some([0, 0, 0, 0, 0, 0, 0, 42]))
        #expect(columns["status"] == .some(Array("done".utf8)))
        #expect(columns["payload"] == .some(Array(payload)))
        #expect(columns["labels"] == .some([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x61]), "text[] {a}")
        #expect(columns["due_date"] == .some(nil), "absent fields are NULL")
    }

    /// Splits a binary COPY row's fields (each length-prefixed; −1 is NULL).
    func fields(of row: [UInt8]) -> [[UInt8]?] {
        func integer(at index: Int, bytes: Int) -> Int {
            row[index..<index + bytes].reduce(0) { $0 << 8 | Int($1) }
        }
        var index = 0
        var fields: [[UInt8]?] = []
        while index < row.count {
            let length = Int32(truncatingIfNeeded: integer(at: index, bytes: 4))
            index += 4
            if length < 0 {
                fields.append(nil)
            } else {
                fields.append(Array(row[index..<index + Int(length)]))
                index += Int(length)
            }
        }
        return fields
    }

    @Test func invalidEventsAreRefused() throws {
        #expect(throws: (any Error).self) { try ProjectedEvent(payload: Data("{}".utf8), streamSequence: 1) }
        let zeroVersion = try MessageCoding.encoder().encode(event { $0.groupVersion = 0 })
        #expect(throws: ProjectedEvent.InvalidEvent.self) { try ProjectedEvent(payload: zeroVersion, streamSequence: 1) }
    }

    @Test func rebuildTablesAreSuffixedLiveTables() {
        let tables = ProjectionTables.live.suffixed("_rebuild")
        #expect(tables.all == ["todo_events_rebuild", "todos_rebuild", "group_projection_offsets_rebuild"])
    }
}

@Suite("Sink: splitting a batch by group")
struct SinkPartitionTests {
    @Test func aGroupAlwaysGoesToTheSamePartAndGroupsSpreadOverAllParts() {
        var counts = [0, 0, 0]
        for group in 0..<3000 {
            let part = DataSinkService.partition(of: "app.event.\(group % 1024).group.g-\(group)", parts: 3)
            // The shard token in front must not matter: only the group decides.
            #expect(part == DataSinkService.partition(of: "app.event.7.group.g-\(group)", parts: 3))
            counts[part] += 1
        }
        #expect(counts.allSatisfy { $0 > 800 }, "\(counts)")
        #expect(DataSinkService.partition(of: "app.event.1.group.x", parts: 1) == 0)
    }
}
