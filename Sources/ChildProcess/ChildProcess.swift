public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn, its output sent to a file, reaped with waitpid.
/// (Foundation's Process waits on a descriptor that daemons such as the postmaster inherit,
/// so it never sees pg_ctl exit.)
public struct ChildProcess: Sendable {
    public let pid: pid_t
    public let command: String

    public struct SpawnError: Error, CustomStringConvertible { public let description: String }

    /// Starts `arguments[0]` (an absolute path) with stdin from /dev/null, stdout to `outputPath`
    /// and stderr to `errorPath` (default: the same file).
    public static func spawn(_ arguments: [String], outputPath: String, errorPath: String? = nil,
                             environment: [String: String]? = nil, inputPath: String = "/dev/null") throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let errorPath {
            posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = withCStringArray(arguments) { argv in
            withCStringArray(env) { envp in posix_spawn(&pid, arguments[0], &actions, nil, argv, envp) }
        }
        guard rc == 0 else {
            throw SpawnError(description: "cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        return ChildProcess(pid: pid, command: (arguments[0] as NSString).lastPathComponent)
    }

    /// Waits for exit; returns the exit status (128+signal when killed), or nil on timeout.
    public func wait(timeout: Double? = nil) -> Int32? {
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        while true {
            var status: Int32 = 0
            let rc = waitpid(pid, &status, deadline == nil ? 0 : WNOHANG)
            if rc == pid {
                let signal = status & 0x7F
                return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
            }
            if rc < 0 && errno != EINTR { return -1 }
            if let deadline {
                if Date() >= deadline { return nil }
                usleep(20_000)
            }
        }
    }

    public func signal(_ sig: Int32) { kill(pid, sig) }

    /// SIGTERM, then SIGKILL if it has not exited within `grace` seconds.
    @discardableResult
    public func stop(grace: Double = 10) -> Int32? {
        signal(SIGTERM)
        if let status = wait(timeout: grace) { return status }
        signal(SIGKILL)
        return wait(timeout: 5)
    }

    /// Runs to completion and returns (exit status, output).
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let outputPath = NSTemporaryDirectory() + "oversight-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { unlink(outputPath) }
        let child = try spawn(arguments, outputPath: outputPath)
        let status = child.wait() ?? -1
        return (status, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }
}

private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
