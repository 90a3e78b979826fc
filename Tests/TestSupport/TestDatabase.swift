import LibPQ
import ChildProcess
public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Each test its own world: a fresh PostgreSQL database per call, on the cluster named by
/// `OVERSIGHT_TEST_DATABASE_URL` (set by `make test`), or on a private cluster that this
/// process starts with `oversight local-db` when the variable is absent. Never skipped.
public enum TestDatabase {
    nonisolated(unsafe) private static var adminConninfo: String?
    private static let lock = NSLock()

    public struct SetupError: Error, CustomStringConvertible { public let description: String }

    /// libpq settings of the server (key=value), without a database name.
    public static func server() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let adminConninfo { return adminConninfo }
        if let url = ProcessInfo.processInfo.environment["OVERSIGHT_TEST_DATABASE_URL"], !url.isEmpty {
            adminConninfo = url
            return url
        }
        let dir = "/tmp/oversight-swift-test-db-\(getuid())"
        let (status, output) = try OversightBinary.run(["local-db", "start", "--data-dir", dir, "--unsafe-fast"])
        guard status == 0 else {
            throw SetupError(description: "could not start a test PostgreSQL cluster (set OVERSIGHT_TEST_DATABASE_URL or run `make test`): \(output)")
        }
        let conninfo = output.split(separator: "\n").last.map(String.init) ?? ""
        adminConninfo = conninfo
        return conninfo
    }

    /// Creates an empty database and returns its connection string.
    public static func create(_ label: String = "t") throws -> String {
        let server = try server()
        let admin = try PGConnection(on(server, database: "postgres"), applicationName: "oversight-tests")
        let name = "ovs_\(label.filter { $0.isLetter || $0.isNumber }.lowercased().prefix(20))_\(UInt32.random(in: 0...UInt32.max))"
        // A database name cannot be a bound parameter; this one is made only of [a-z0-9_].
        try admin.runScript("CREATE DATABASE \(name)")
        return on(server, database: name)
    }

    /// The connection string logging in as `user` with `password`, which goes into a 0600
    /// password file of its own (a password never stands in a connection string here).
    public static func login(_ conninfo: String, user: String, password: String) throws -> String {
        let file = NSTemporaryDirectory() + "ovs-pgpass-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: file, contents: Data("*:*:*:\(user):\(password)\n".utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw SetupError(description: "cannot write \(file)")
        }
        guard conninfo.hasPrefix("postgres"), var parts = URLComponents(string: conninfo) else {
            return conninfo + " user=\(user) passfile=\(file)"
        }
        parts.user = user
        parts.queryItems = (parts.queryItems ?? []).filter { $0.name != "passfile" } + [URLQueryItem(name: "passfile", value: file)]
        return parts.string ?? conninfo
    }

    /// The password file a connection string names, if it names one.
    public static func passfile(of conninfo: String) -> String? {
        if conninfo.hasPrefix("postgres") { return URLComponents(string: conninfo)?.queryItems?.first { $0.name == "passfile" }?.value }
        return conninfo.split(separator: " ").last { $0.hasPrefix("passfile=") }.map { String($0.dropFirst(9)) }
    }

    /// The server's TCP port in a connection string.
    public static func port(of conninfo: String) -> Int? {
        if conninfo.hasPrefix("postgres") { return URLComponents(string: conninfo)?.port }
        return conninfo.split(separator: " ").last { $0.hasPrefix("port=") }.flatMap { Int($0.dropFirst(5)) }
    }

    /// The same connection made to another address (a relay): `hostaddr` and `port` change,
    /// `host` stays, so that the password file still matches it.
    public static func via(_ conninfo: String, hostaddr: String, port: Int) -> String {
        guard conninfo.hasPrefix("postgres"), var parts = URLComponents(string: conninfo) else {
            return conninfo + " hostaddr=\(hostaddr) port=\(port)"
        }
        parts.port = port
        parts.queryItems = (parts.queryItems ?? []) + [URLQueryItem(name: "hostaddr", value: hostaddr)]
        return parts.string ?? conninfo
    }

    /// The server's connection string (a URI, as `local-db start` prints it, or key=value)
    /// naming another database.
    public static func on(_ server: String, database: String) -> String {
        guard server.hasPrefix("postgres"), var parts = URLComponents(string: server) else { return server + " dbname=\(database)" }
        parts.path = "/" + database
        return parts.string ?? server
    }
}

/// The built `oversight` executable, next to the test bundle in the build directory.
public enum OversightBinary {
    public static var path: String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("oversight").path,
            FileManager.default.currentDirectoryPath + "/.build/debug/oversight",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// Runs the binary to completion; returns its exit status and combined output.
    public static func run(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let result = try runSplit(arguments)
        return (result.status, result.stdout + result.stderr)
    }

    /// Runs the binary to completion; returns exit status, stdout and stderr separately.
    /// A run that takes longer than `timeout` seconds is killed, and reported as exit status -9.
    /// (posix_spawn and waitpid: Foundation's Process never sees `local-db start` exit, because
    /// the postmaster it leaves running inherits the descriptor Process watches.)
    public static func runSplit(_ arguments: [String], environment: [String: String]? = nil, timeout: Double = 300,
                                input: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestDatabase.SetupError(description: "\(path) not found: run `swift build` before `swift test` (make test does)")
        }
        let dir = NSTemporaryDirectory()
        let out = dir + "ovs-out-\(UUID().uuidString)"
        let err = dir + "ovs-err-\(UUID().uuidString)"
        let inputFile = dir + "ovs-in-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: err)
            try? FileManager.default.removeItem(atPath: inputFile)
        }
        if let input { try input.write(toFile: inputFile, atomically: true, encoding: .utf8) }
        let env = environment.map { ProcessInfo.processInfo.environment.merging($0) { _, new in new } }
        let child = try ChildProcess.spawn([path] + arguments, outputPath: out, errorPath: err, environment: env,
                                           inputPath: input == nil ? "/dev/null" : inputFile)
        var status = child.wait(timeout: timeout)
        if status == nil {
            child.signal(SIGKILL)
            _ = child.wait(timeout: 5)
            status = -9
        }
        var stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        if status == -9 { stderr += "\n[killed after \(Int(timeout)) s]" }
        return (status!, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", stderr)
    }
}

/// A long-running `oversight` process (coordinator, worker) whose output goes to a log file.
public final class RunningProcess: @unchecked Sendable {
    public let process = Process()
    public let logPath: String

    /// `launcher` runs the binary through another program (`ip netns exec NS`, which then
    /// execs it: the process is still the binary's).
    public init(_ arguments: [String], logPath: String, environment: [String: String] = [:], launcher: [String] = []) throws {
        self.logPath = logPath
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(launcher.dropFirst()) + [OversightBinary.path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: OversightBinary.path)
            process.arguments = arguments
        }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until the process has logged `text` (a coordinator's "coordinator listening", say):
    /// on a loaded machine a process takes its time to start, and a test must not race it.
    public func waitForLog(_ text: String, within seconds: Double = 120) throws {
        try waitUntil("\(logPath) says \"\(text)\"", within: seconds) {
            if log.contains(text) { return true }
            if !process.isRunning { throw NotInTime(description: "the process exited before saying \"\(text)\":\n\(log)") }
            return false
        }
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; returns the exit status.
    @discardableResult
    public func stop(grace: Double = 10) -> Int32 {
        if process.isRunning { process.terminate() }
        _ = try? waitUntil("\(logPath): the process exits after SIGTERM", within: grace, poll: 0.02) { !process.isRunning }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
public func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
