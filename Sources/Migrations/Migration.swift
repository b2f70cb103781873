import Foundation

/// One versioned SQL file, `NNNN_name.sql`.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String

    /// FNV-1a 64-bit of the SQL text: an applied migration whose file later changed is an error.
    public var checksum: String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return String(hash, radix: 16)
    }

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Parses `0001_accounts.sql` into version 1, name `accounts`.
    public init?(fileName: String, sql: String) {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]), version > 0 else { return nil }
        self.init(version: version, name: String(stem[stem.index(after: underscore)...]), sql: sql)
    }

    /// The migrations shipped with this build, in version order.
    public static func bundled() throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "SQL", withExtension: nil) else {
            throw MigrationError.missingFiles("the SQL resources are not in the bundle")
        }
        return try load(from: directory)
    }

    /// Every `NNNN_name.sql` in `directory`, in version order; versions must be unique.
    public static func load(from directory: URL) throws -> [Migration] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        var migrations: [Migration] = []
        for file in files where file.hasSuffix(".sql") {
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            guard let migration = Migration(fileName: file, sql: sql) else {
                throw MigrationError.badFileName(file)
            }
            migrations.append(migration)
        }
        migrations.sort { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            throw MigrationError.duplicateVersion(a.version)
        }
        return migrations
    }
}

public enum MigrationError: Error, Equatable, CustomStringConvertible {
    case missingFiles(String)
    case badFileName(String)
    case duplicateVersion(Int)
    case changedAfterApply(version: Int, name: String)

    public var description: String {
        switch self {
        case .missingFiles(let why): "no migrations: \(why)"
        case .badFileName(let file): "\(file) is not named NNNN_name.sql"
        case .duplicateVersion(let version): "two migrations have version \(version)"
        case .changedAfterApply(let version, let name):
            "migration \(version) (\(name)) was changed after it was applied; add a new migration instead"
        }
    }
}
