import Contracts
import Foundation
import Logging
import NATS
import Postgres
import Sharding

/// Rebuilds the projection from the EVENTS stream (from its first message) into fresh tables,
/// then swaps them in while the live sink keeps running:
///
/// 1. create `<table>_rebuild` like the live tables and replay every event into them, in chunks;
/// 2. replay what arrived meanwhile, then, in one transaction, lock the live tables (the live
///    sink waits), check that the live tables hold nothing newer than what was replayed (else
///    catch up again), and swap: live → `_old`, rebuilt → live names (indexes renamed to the
///    live names too), drop `_old`.
///
/// The live sink resumes on the new tables; it re-resolves table names after the lock.
public struct ProjectionRebuilder: Sendable {
    public let pool: PostgresPool
    public let jetStream: JetStream
    public let stream: String
    let logger: Logger
    let chunkSize: Int

    public init(pool: PostgresPool, jetStream: JetStream, stream: String = Streams.events, logger: Logger, chunkSize: Int = 2000) {
        self.pool = pool
        self.jetStream = jetStream
        self.stream = stream
        self.logger = logger
        self.chunkSize = chunkSize
    }

    public struct Progress: Sendable, Equatable {
        /// Last stream sequence applied (0: the stream was empty).
        public var lastSequence: UInt64
        public var events: Int
        public var skipped: Int
        /// Events recorded as failed projections (written as their `projection_failed` stand-ins).
        public var failed = 0
    }

    /// Creates `target` afresh (like the live tables, without rows) and replays the whole stream into it.
    @discardableResult
    public func build(into target: ProjectionTables) async throws -> Progress {
        try await pool.withTransaction { connection in
            for (live, fresh) in zip(ProjectionTables.live.all, target.all) {
                try connection.execute("DROP TABLE IF EXISTS \(fresh)")
                try connection.execute("CREATE TABLE \(fresh) (LIKE \(live) INCLUDING ALL)")
            }
        }
        return try await replay(into: target, after: 0)
    }

    /// Applies every event after `sequence` into `target`.
    func replay(into target: ProjectionTables, after sequence: UInt64) async throws -> Progress {
        let writer = ProjectionWriter(tables: target)
        var progress = Progress(lastSequence: sequence, events: 0, skipped: 0)
        var chunk: [ProjectedEvent] = []
        func flush() async throws {
            guard !chunk.isEmpty else { return }
            let events = chunk
            do {
                _ = try await pool.withTransaction { try writer.apply(events, on: $0) }
            } catch let error as PostgresError where error.isRefusedData {
                // An event Postgres refuses: write the chunk event by event, recording each one
                // refused as a failed projection (as the live sink does) instead of aborting.
                for event in events {
                    do {
                        _ = try await pool.withTransaction { try writer.apply([event], on: $0) }
                    } catch let error as PostgresError where error.isRefusedData {
                        let reason = "\(error)"
                        try await pool.withTransaction { try FailedProjection.record(event, error: reason, writer: writer, on: $0) }
                        progress.failed += 1
                        logger.error("event could not be projected; recorded in failed_projections", metadata: [
                            "event.id": "\(event.event.eventID)", "group.id": "\(event.event.groupID)", "error": "\(reason)"])
                    }
                }
            }
            progress.events += events.count
            chunk.removeAll(keepingCapacity: true)
        }
        for try await message in jetStream.replay(stream: stream, filter: SubjectKind.event.wildcard, from: sequence + 1) {
            progress.lastSequence = message.sequence
            do {
                chunk += try ProjectedEvent.all(in: message.payload, streamSequence: message.sequence)
            } catch {
                progress.skipped += 1 // the live sink dead-letters these
            }
            if chunk.count >= chunkSize { try await flush() }
        }
        try await flush()
        return progress
    }

    /// Rebuilds into fresh tables and swaps them in. Returns what was replayed.
    @discardableResult
    public func rebuildAndSwap() async throws -> Progress {
        let target = ProjectionTables.live.suffixed("_rebuild")
        var progress = try await build(into: target)
        logger.info("projection rebuilt; swapping", metadata: ["events": "\(progress.events)", "stream.sequence": "\(progress.lastSequence)"])
        for _ in 0..<10 {
            let more = try await replay(into: target, after: progress.lastSequence)
            progress.events += more.events
            progress.skipped += more.skipped
            progress.failed += more.failed
            progress.lastSequence = more.lastSequence
            let replayedUpTo = progress.lastSequence
            let swapped = try await pool.withTransaction { connection in
                let live = ProjectionTables.live
                try connection.execute("LOCK TABLE \(live.events), \(live.todos), \(live.offsets) IN ACCESS EXCLUSIVE MODE")
                let newest = try connection.query("SELECT coalesce(max(stream_seq), 0)::bigint AS seq FROM \(live.events)")
                guard try UInt64(newest[0].decode(Int64.self, "seq")) <= replayedUpTo else { return false }
                for (current, fresh) in zip(live.all, target.all) {
                    try Self.swap(current: current, fresh: fresh, on: connection)
                }
                // Every recorded failure was tried again by this replay: those it could write
                // now (their row is not a `projection_failed` stand-in) are no longer failures.
                _ = try connection.query("""
                    DELETE FROM failed_projections AS f USING \(live.events) AS e
                    WHERE e.event_id = f.event_id
                      AND NOT (e.event_type = 'command.rejected' AND e.payload->>'code' = '\(FailedProjection.code)')
                    """)
                return true
            }
            if swapped {
                logger.info("projection swapped in", metadata: ["events": "\(progress.events)"])
                return progress
            }
        }
        throw RebuildError(reason: "the live sink kept getting ahead of the rebuild; try again when it is quieter")
    }

    public struct RebuildError: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Inside the caller's transaction: `current` becomes `<current>_old` and is dropped, `fresh`
    /// takes its name and current's grants (the services' roles keep what migration 0007 gave
    /// them), and each of fresh's indexes takes the name of current's index with the same
    /// definition (so later migrations find the names they expect).
    static func swap(current: String, fresh: String, on connection: PostgresConnection) throws {
        func indexes(of table: String) throws -> [(name: String, shape: String)] {
            try connection.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1", table)
                .map { row in
                    let name = try row.decode(String.self, "indexname")
                    let definition = try row.decode(String.self, "indexdef")
                    // "CREATE UNIQUE INDEX name ON schema.table USING btree (...)" → shape without name and table.
                    let shape = definition.replacingOccurrences(of: " \(name) ON ", with: " ON ")
                        .replacingOccurrences(of: ".\(table) USING", with: ". USING")
                    return (name, shape)
                }
        }
        let old = try indexes(of: current)
        let new = try indexes(of: fresh)
        try connection.execute("ALTER TABLE \(current) RENAME TO \(current)_old")
        for index in old { try connection.execute("ALTER INDEX \(index.name) RENAME TO \(index.name)_old") }
        try connection.execute("ALTER TABLE \(fresh) RENAME TO \(current)")
        let grants = try connection.query("""
            SELECT a.grantee::regrole::text AS grantee, a.privilege_type
            FROM pg_class c, aclexplode(c.relacl) AS a
            WHERE c.oid = $1::regclass AND a.grantee <> c.relowner AND a.grantee <> 0
            """, "\(current)_old")
        for grant in grants {
            let privilege = try grant.decode(String.self, "privilege_type")
            guard privilege.allSatisfy({ $0.isLetter || $0 == " " }) else { continue }
            try connection.execute("GRANT \(privilege) ON \(current) TO \(try grant.decode(String.self, "grantee"))")
        }
        for index in new {
            if let match = old.first(where: { $0.shape == index.shape }) {
                try connection.execute("ALTER INDEX \(index.name) RENAME TO \(match.name)")
            }
        }
        try connection.execute("DROP TABLE \(current)_old")
    }
}
