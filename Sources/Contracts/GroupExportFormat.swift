/// The group export document (DESIGN §10): the streamer writes it (`GET /api/v1/groups/{id}/export`),
/// command-api reads it (`POST /api/v1/groups/import`); both name it by these.
public enum GroupExportFormat {
    public static let name = "teamboard-export"
    public static let version = 1
}
