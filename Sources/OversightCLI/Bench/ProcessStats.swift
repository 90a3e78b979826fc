import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What Linux says about a process in /proc: CPU time used and peak resident memory.
struct ProcessStats {
    /// User plus system CPU seconds.
    let cpuSeconds: Double
    /// Peak resident set size (VmHWM), in MiB.
    let peakRSSMiB: Double

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// Nil when the process is gone.
    init?(pid: pid_t) {
        guard let cpu = Self.cpuSeconds(pid: pid),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        cpuSeconds = cpu
        peakRSSMiB = kib / 1024
    }

    static func cpuSeconds(pid: pid_t) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm)": state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / ticksPerSecond
    }

    /// CPU seconds of every process whose command name starts with `prefix` (e.g. the
    /// PostgreSQL server and its backends), keyed by pid.
    static func cpuSeconds(ofCommandsStartingWith prefix: String) -> [pid_t: Double] {
        var out: [pid_t: Double] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry),
                  let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
                  comm.hasPrefix(prefix), let cpu = cpuSeconds(pid: pid) else { continue }
            out[pid] = cpu
        }
        return out
    }
}
