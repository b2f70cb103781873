/// Deterministic sharding of groups over a fixed number of shards.
///
/// `shard = crc32(utf8(groupID)) % 1024`, written in decimal in subjects. This matches the original
/// Go system bit for bit, so both can share one JetStream.
public enum Shard {
    public static let count = 1024

    public static func of(_ groupID: GroupID) -> Int {
        Int(CRC32.checksum(groupID.rawValue) % UInt32(count))
    }

    /// The shard of a raw group id, validating it first.
    public static func of(rawGroupID: String) throws(GroupIDError) -> Int {
        of(try GroupID(rawGroupID))
    }
}
