import Foundation
import Assessment
import ChildProcess
import AuditStore
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL cluster in a data directory, for the demo and the test suite:
/// initdb on first use, pg_ctl to start and stop, loopback TCP only, scram-sha-256 with a
/// generated superuser password kept in a 0600 password file that the connection string names.
/// PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user; when
/// that user cannot reach the data directory (it is in root's private home, say), the cluster
/// itself lives under /var/lib/oversight/clusters, and the data directory says where.
struct LocalCluster {
    let dataDirectory: String
    /// Where the cluster's files are: the data directory, or a place the postgres user reaches.
    let clusterDirectory: String
    let port: Int
    /// Faster, not crash-safe (fsync off): for throwaway test clusters only.
    var unsafeFast = false

    struct Failure: Error, CustomStringConvertible { let description: String }

    init(dataDirectory: String, port: Int? = nil) throws {
        let absolute = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        self.dataDirectory = absolute
        clusterDirectory = Self.reachableLocation(for: absolute)
        let portFile = absolute + "/oversight.port"
        if let port {
            self.port = port
        } else if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let saved = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            self.port = saved
        } else {
            self.port = try Self.freePort()
        }
    }

    /// libpq settings (key=value); the password comes from the password file, never from here.
    var conninfo: String {
        "host=127.0.0.1 port=\(port) user=postgres dbname=oversight" + (hasPasswordFile ? " passfile=\(passwordFile)" : "")
    }
    /// The same as a URI, as the README writes connection strings.
    var uri: String {
        "postgresql://postgres@127.0.0.1:\(port)/oversight" + (hasPasswordFile ? "?passfile=\(passwordFile)" : "")
    }
    var passwordFile: String { dataDirectory + "/pgpass" }
    private var hasPasswordFile: Bool { FileManager.default.fileExists(atPath: passwordFile) }
    var logFile: String { clusterDirectory + "/postgresql.log" }
    var pgdata: String { clusterDirectory + "/pgdata" }
    var relocated: Bool { clusterDirectory != dataDirectory }
    static var runningAsRoot: Bool { geteuid() == 0 }

    /// The file in a data directory that names where its cluster was put instead.
    static func locationFile(_ dataDirectory: String) -> String { dataDirectory + "/oversight.cluster-location" }

    /// The data directory itself, unless the cluster must run as `postgres` and that user cannot
    /// get there; then a directory of its own under /var/lib/oversight/clusters (remembered).
    static func reachableLocation(for dataDirectory: String) -> String {
        if let saved = try? String(contentsOfFile: locationFile(dataDirectory), encoding: .utf8) {
            return saved.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard runningAsRoot, !postgresReaches(dataDirectory) else { return dataDirectory }
        let tag = AuditHash.sha256(Array(dataDirectory.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
        return "/var/lib/oversight/clusters/\((dataDirectory as NSString).lastPathComponent)-\(tag)"
    }

    /// Whether the postgres user can get into the directory, or into what of its path exists.
    static func postgresReaches(_ directory: String) -> Bool {
        var existing = directory
        while !FileManager.default.fileExists(atPath: existing) && existing != "/" { existing = (existing as NSString).deletingLastPathComponent }
        guard let (status, _) = try? ChildProcess.run(["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/test", "-x", existing]) else { return false }
        return status == 0
    }

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
        if relocated {
            try FileManager.default.createDirectory(atPath: clusterDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            try clusterDirectory.write(toFile: Self.locationFile(dataDirectory), atomically: true, encoding: .utf8)
        }
        if Self.runningAsRoot { try run(["/bin/chown", "-R", "postgres:postgres", clusterDirectory], asPostgres: false) }
        if !FileManager.default.fileExists(atPath: pgdata + "/PG_VERSION") {
            try initialise(bin)
        }
        if try status(bin) { return try createDatabase() }
        var options = "-p \(port) -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200"
        // Sized for bulk writes, as a real installation would be: a cache for the working set,
        // and checkpoints far enough apart that full-page writes do not dominate the WAL.
        options += " -c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=15min"
        // Full-page images (the first change to a page after each checkpoint) compressed: lz4
        // where the server is built with it, pglz otherwise.
        options += " -c wal_compression=\(Self.hasLZ4(bin) ? "lz4" : "on")"
        if unsafeFast { options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" }
        try run(["\(bin)/pg_ctl", "-D", pgdata, "-l", logFile, "-o", options, "-w", "-t", "60", "start"], asPostgres: Self.runningAsRoot)
        try createDatabase()
    }

    /// Whether the server links liblz4 (Debian's and most distributions' builds do).
    static func hasLZ4(_ bin: String) -> Bool {
        guard let (status, output) = try? ChildProcess.run(["/usr/bin/ldd", "\(bin)/postgres"]), status == 0 else { return false }
        return output.contains("liblz4")
    }

    /// initdb with a generated superuser password: scram-sha-256 over TCP (the only way in),
    /// the password kept for libpq in a 0600 password file of the caller's.
    private func initialise(_ bin: String) throws {
        var bytes = [UInt8](repeating: 0, count: 24)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let password = bytes.map { String(format: "%02x", $0) }.joined()
        let initial = clusterDirectory + "/initdb.pwfile"
        guard FileManager.default.createFile(atPath: initial, contents: Data((password + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw Failure(description: "cannot write \(initial)")
        }
        defer { try? FileManager.default.removeItem(atPath: initial) }
        if Self.runningAsRoot { try run(["/bin/chown", "postgres:postgres", initial], asPostgres: false) }
        try run(["\(bin)/initdb", "-D", pgdata, "-U", "postgres", "--auth-host=scram-sha-256", "--auth-local=peer", "--pwfile=\(initial)",
                 "-E", "UTF8", "--locale=C", "--no-sync"], asPostgres: Self.runningAsRoot)
        try? FileManager.default.removeItem(atPath: passwordFile)
        guard FileManager.default.createFile(atPath: passwordFile, contents: Data("127.0.0.1:*:*:postgres:\(password)\n".utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw Failure(description: "cannot write the password file \(passwordFile)")
        }
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
        try AuditStore.createDatabase(adminConninfo: adminConninfo, recreate: true)
    }

    private var adminConninfo: String {
        "host=127.0.0.1 port=\(port) user=postgres dbname=postgres" + (hasPasswordFile ? " passfile=\(passwordFile)" : "")
    }

    private func createDatabase() throws {
        try AuditStore.createDatabase(adminConninfo: adminConninfo, recreate: false)
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
