import Foundation

/// CPU time used by the processes of the system under test, from /proc (utime + stime): where a
/// phase's cycles went. Postgres backends are found by name at each reading.
struct ProcessCPU {
    /// Service name → pid, from a pids directory (`scripts/services.sh`, `scripts/infra.sh`).
    let pidDirectory: String?

    /// CPU seconds per process group at this moment.
    func snapshot() -> [String: Double] {
        var usage: [String: Double] = [:]
        if let pidDirectory, let files = try? FileManager.default.contentsOfDirectory(atPath: pidDirectory) {
            for file in files where file.hasSuffix(".pid") {
                guard let text = try? String(contentsOfFile: "\(pidDirectory)/\(file)", encoding: .utf8),
                      let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
                usage[String(file.dropLast(4)), default: 0] += Self.seconds(of: pid)
            }
        }
        usage["load generator", default: 0] += Self.seconds(of: getpid())
        for pid in Self.pids(named: "postgres") { usage["postgres", default: 0] += Self.seconds(of: pid) }
        return usage
    }

    /// Per process group: CPU cores used on average between two snapshots taken `seconds` apart.
    static func cores(from start: [String: Double], to end: [String: Double], over seconds: Double) -> [(String, Double)] {
        end.map { name, value in (name, max(0, value - (start[name] ?? 0)) / seconds) }.sorted { $0.1 > $1.1 }
    }

    static func seconds(of pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func pids(named name: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { Int32($0) }.filter {
            (try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == name
        }
    }
}
