import Foundation
import Logging

/// One JSON object per line on stderr: `{"ts":…,"level":…,"label":…,"msg":…, metadata…}`.
public struct JSONLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init(label: String) {
        self.label = label
        if let level = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) {
            logLevel = level
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level
        let message = event.message
        let extra = event.metadata
        var object: [String: String] = [
            "ts": Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)),
            "level": level.rawValue,
            "label": label,
            "msg": message.description,
        ]
        if let error = event.error { object["error"] = "\(error)" }
        for (key, value) in metadata.merging(extra ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = "\(value)"
        }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(UInt8(ascii: "\n"))
        FileHandle.standardError.write(data)
    }
}
