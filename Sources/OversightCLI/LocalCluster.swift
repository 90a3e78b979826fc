import Foundation
import ChildProcess
import LibPQ
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL cluster in a data directory, for the demo and the test suite:
/// initdb on first use, pg_ctl to start and stop, loopback TCP only.
/// PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user.
struct LocalCluster {
    let dataDirectory: String
    let port: Int
    /// Faster, not crash-safe (fsync off): for throwaway test clusters only.
    var unsafeFast = false

    struct Failure: Error, CustomStringConvertible { let description: String }

    init(dataDirectory: String, port: Int? = nil) throws {
        let absolute = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        self.dataDirectory = absolute
        let portFile = absolute + "/oversight.port"
        if let port {
            self.port = port
        } else if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let saved = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            self.port = saved
        } else {
            self.port = try Self.freePort()
        }
    }

    var conninfo: String { "host=127.0.0.1 port=\(port) user=postgres dbname=oversight" }
    var logFile: String { dataDirectory + "/postgresql.log" }
    var pgdata: String { dataDirectory + "/pgdata" }
    static var runningAsRoot: Bool { geteuid() == 0 }

    static func binDirectory() throws -> String {
        if let dir = ProcessInfo.processInfo.environment["OVERSIGHT_PG_BINDIR"] { return dir }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        if let newest = versions.last, FileManager.default.isExecutableFile(atPath: "\(root)/\(newest)/bin/initdb") {
            return "\(root)/\(newest)/bin"
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/initdb") {
            return String(dir)
        }
        throw Failure(description: "PostgreSQL server programs (initdb, pg_ctl) not found; install them with `apt-get install postgresql` (or run `make demo`, which does), or set OVERSIGHT_PG_BINDIR")
    }

    /// Starts the cluster (creating it if needed) and the `oversight` database; idempotent.
    func start() throws {
        let bin = try Self.binDirectory()
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        try String(port).write(toFile: dataDirectory + "/oversight.port", atomically: true, encoding: .utf8)
        if Self.runningAsRoot { try run(["/bin/chown", "-R", "postgres:postgres", dataDirectory], asPostgres: false) }
        if !FileManager.default.fileExists(atPath: pgdata + "/PG_VERSION") {
            try run(["\(bin)/initdb", "-D", pgdata, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                    asPostgres: Self.runningAsRoot)
        }
        if try status(bin) { return try createDatabase() }
        var options = "-p \(port) -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200"
        // Sized for bulk writes, as a real installation would be: a cache for the working set,
        // and checkpoints far enough apart that full-page writes do not dominate the WAL.
        options += " -c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=15min"
        if unsafeFast { options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" }
        try run(["\(bin)/pg_ctl", "-D", pgdata, "-l", logFile, "-o", options, "-w", "-t", "60", "start"], asPostgres: Self.runningAsRoot)
        try createDatabase()
    }

    func stop() throws {
        let bin = try Self.binDirectory()
        guard FileManager.default.fileExists(atPath: pgdata + "/postmaster.pid") else { return }
        try run(["\(bin)/pg_ctl", "-D", pgdata, "-m", "fast", "-w", "stop"], asPostgres: Self.runningAsRoot)
    }

    private func status(_ bin: String) throws -> Bool {
        (try? run(["\(bin)/pg_ctl", "-D", pgdata, "status"], asPostgres: Self.runningAsRoot)) != nil
    }

    /// Drops the `oversight` database and creates it empty (for `bench`: every run measures
    /// the same empty tables, not those of the runs before it).
    func recreateDatabase() throws {
        let admin = try PGConnection("host=127.0.0.1 port=\(port) user=postgres dbname=postgres", applicationName: "oversight-local-db")
        try admin.query("DROP DATABASE IF EXISTS oversight WITH (FORCE)")
        try admin.query("CREATE DATABASE oversight")
    }

    private func createDatabase() throws {
        let admin = try PGConnection("host=127.0.0.1 port=\(port) user=postgres dbname=postgres", applicationName: "oversight-local-db")
        let exists = try admin.query("SELECT 1 FROM pg_database WHERE datname = 'oversight'")
        if exists.rowCount == 0 { try admin.query("CREATE DATABASE oversight") }
    }

    @discardableResult
    private func run(_ arguments: [String], asPostgres: Bool) throws -> String {
        let command = asPostgres ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + arguments : arguments
        let (status, text) = try ChildProcess.run(command)
        guard status == 0 else {
            var message = "\((arguments[0] as NSString).lastPathComponent) failed (exit \(status)): \(text.trimmingCharacters(in: .whitespacesAndNewlines))"
            if asPostgres { message += "\n(the postgres user must be able to reach \(dataDirectory); choose another --data-dir if a parent directory is private)" }
            if let log = try? String(contentsOfFile: logFile, encoding: .utf8), !log.isEmpty {
                message += "\nlast lines of \(logFile):\n" + log.split(separator: "\n").suffix(5).joined(separator: "\n")
            }
            throw Failure(description: message)
        }
        return text
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "cannot create a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw Failure(description: "cannot bind a socket to find a free port") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
