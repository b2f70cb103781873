import Foundation
import Testing
@testable import Migrations

@Suite("Migration files")
struct MigrationFileTests {
    @Test func fileNamesGiveVersionAndName() throws {
        let migration = try #require(Migration(fileName: "0012_add_labels.sql", sql: "SELECT 1"))
        #expect(migration.version == 12)
        #expect(migration.name == "add_labels")
        #expect(Migration(fileName: "add_labels.sql", sql: "") == nil)
        #expect(Migration(fileName: "0000_zero.sql", sql: "") == nil)
        #expect(Migration(fileName: "0001_x.txt", sql: "") == nil)
    }

    @Test func bundledMigrationsAreOrderedAndUnique() throws {
        let migrations = try Migration.bundled()
        #expect(migrations.count >= 2)
        #expect(migrations.map(\.version) == migrations.map(\.version).sorted())
        #expect(Set(migrations.map(\.version)).count == migrations.count)
        #expect(migrations.allSatisfy { !$0.sql.isEmpty })
    }

    @Test func checksumChangesWithTheSQL() {
        let a = Migration(version: 1, name: "a", sql: "CREATE TABLE a (id int)")
        let b = Migration(version: 1, name: "a", sql: "CREATE TABLE a (id bigint)")
        #expect(a.checksum != b.checksum)
        #expect(a.checksum == Migration(version: 1, name: "a", sql: "CREATE TABLE a (id int)").checksum)
    }

    @Test func loadingRejectsDuplicateVersions() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "SELECT 1".write(to: directory.appendingPathComponent("0001_a.sql"), atomically: true, encoding: .utf8)
        try "SELECT 2".write(to: directory.appendingPathComponent("0001_b.sql"), atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.duplicateVersion(1)) { try Migration.load(from: directory) }
    }
}
