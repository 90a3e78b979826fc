import Assessment
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Shows progress of long work on stderr: a redrawn bar with rate and ETA on a terminal,
/// a plain line every few seconds otherwise (logs, CI).
struct ProgressDisplay {
    let label: String
    let interactive = isatty(STDERR_FILENO) == 1
    let start = Date()
    private var lastPrint = Date.distantPast
    /// Work already done when the display started: not counted in the rate.
    var baseline: Int64 = 0
    /// What `done` and `total` count: records (or rows), or bytes of a file.
    var bytes = false

    init(label: String) { self.label = label }

    mutating func update(done: Int64, total: Int64, detail: String = "", force: Bool = false) {
        let now = Date()
        let interval = interactive ? 0.1 : 5.0
        guard force || now.timeIntervalSince(lastPrint) >= interval else { return }
        lastPrint = now
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        let rate = Double(max(0, done - baseline)) / elapsed
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let eta = rate > 0 && total > done ? Self.duration(Double(total - done) / rate) : "--"
        let amounts = bytes ? "\(Self.size(done))/\(Self.size(total)) \(Self.size(Int64(rate)))/s" : "\(done)/\(total) \(String(format: "%.0f", rate))/s"
        let numbers = "\(amounts) ETA \(eta)\(detail.isEmpty ? "" : " " + detail)"
        if interactive {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(label) \(bar) \(String(format: "%3.0f", fraction * 100))% \(numbers)".utf8))
        } else {
            FileHandle.standardError.write(Data("\(label): \(String(format: "%.0f", fraction * 100))% \(numbers)\n".utf8))
        }
    }

    static func size(_ bytes: Int64) -> String {
        if bytes < 1 << 20 { return String(format: "%.0f KiB", Double(bytes) / 1024) }
        if bytes < 1 << 30 { return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20)) }
        return String(format: "%.2f GiB", Double(bytes) / Double(1 << 30))
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("oversight: \(message)\n".utf8))
}

/// "1 rule", "2 rules": a count with its noun in the right number.
func plural(_ count: some BinaryInteger, _ noun: String, _ plural: String? = nil) -> String {
    "\(count) \(count == 1 ? noun : plural ?? noun + "s")"
}

/// The one writer of a command's standard output. `print` writes through C's buffered stdout;
/// so does this, so that a header printed with `print` and rows written here come out in the
/// order they were written whether stdout is a terminal, a pipe or a file.
enum StandardOutput {
    static func write(_ text: String) { print(text, terminator: "") }
    static func write(_ bytes: [UInt8]) { print(String(decoding: bytes, as: UTF8.self), terminator: "") }
    /// Out now (a batch id a script waits for).
    static func flush() { fflush(nil) }
}

extension CalendarDate {
    /// Today in UTC, by this machine's clock: the default day an assessment is made as of.
    static var today: CalendarDate { CalendarDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)) }
}
