import Foundation
import Testing
import ChildProcess
import LibPQ
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL primary and a synchronous standby, made with Debian's own programs as
/// `Deploy/database-failover.md` describes: the primary by `oversight local-db start` (crash-safe:
/// fsync and synchronous commit on), the standby by `pg_basebackup` streaming from it, then
/// `synchronous_standby_names` so that a commit returns only once the standby has it.
final class ReplicatedDatabase: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible { let description: String }

    let base = NSTemporaryDirectory() + "oversight-replicated-\(UUID().uuidString)"
    var primaryDirectory: String { base + "/primary" }
    var standbyDirectory: String { base + "/standby" }
    let primaryPort: Int
    let standbyPort: Int
    let primaryData: String
    var standbyData: String { standbyDirectory + "/pgdata" }
    /// The primary's password file (the standby is a copy: same password).
    var passfile: String { primaryDirectory + "/pgpass" }
    let bin: String
    private let root = geteuid() == 0

    /// Both servers, the writable one chosen by libpq: what every service is given.
    var conninfo: String {
        "postgresql://postgres@127.0.0.1:\(primaryPort),127.0.0.1:\(standbyPort)/oversight?target_session_attrs=read-write&passfile=\(passfile)"
    }
    func direct(_ port: Int) -> String { "postgresql://postgres@127.0.0.1:\(port)/oversight?passfile=\(passfile)" }

    init() throws {
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let started = try OversightBinary.runSplit(["local-db", "start", "--data-dir", base + "/primary"], timeout: 180)
        guard started.status == 0 else { throw Failure(description: "local-db start: \(started.stderr)") }
        let directory = base + "/primary"
        primaryPort = Int(try String(contentsOfFile: directory + "/oversight.port", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        let location = (try? String(contentsOfFile: directory + "/oversight.cluster-location", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? directory
        primaryData = location + "/pgdata"
        standbyPort = freeLoopbackPort()
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted()
        bin = ProcessInfo.processInfo.environment["OVERSIGHT_PG_BINDIR"] ?? "/usr/lib/postgresql/\(versions.last ?? 15)/bin"

        // The standby: a base backup with the WAL streamed alongside, told to follow the primary.
        try FileManager.default.createDirectory(atPath: standbyDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try run(["\(bin)/pg_basebackup", "-d", "host=127.0.0.1 port=\(primaryPort) user=postgres passfile=\(passfile)",
                 "-D", standbyData, "-X", "stream", "-c", "fast", "--no-sync"])
        let standbyPassfile = standbyDirectory + "/pgpass"
        try FileManager.default.copyItem(atPath: passfile, toPath: standbyPassfile)
        FileManager.default.createFile(atPath: standbyData + "/standby.signal", contents: Data())
        let settings = """

            primary_conninfo = 'host=127.0.0.1 port=\(primaryPort) user=postgres passfile=\(standbyPassfile) application_name=standby1'
            """
        let auto = try FileHandle(forWritingTo: URL(fileURLWithPath: standbyData + "/postgresql.auto.conf"))
        auto.seekToEndOfFile()
        auto.write(Data((settings + "\n").utf8))
        try auto.close()
        chmod(standbyData, 0o700)
        if root { try run(["/bin/chown", "-R", "postgres:postgres", standbyDirectory]) }
        // A standby needs at least the primary's max_connections (`local-db` starts it with 200).
        try asPostgres(["\(bin)/pg_ctl", "-D", standbyData, "-l", standbyDirectory + "/postgresql.log", "-w", "-t", "60",
                        "-o", "-p \(standbyPort) -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200", "start"])

        // Synchronous from here on: a commit waits until the standby has flushed it.
        let primary = try PGConnection(direct(primaryPort))
        try waitUntil("the standby streams from the primary", within: 60) {
            try primary.query("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby1' AND state = 'streaming'").int(0, 0) == 1
        }
        try primary.runScript("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
        try primary.runScript("SELECT pg_reload_conf()")
        try waitUntil("the standby is synchronous", within: 60) {
            try primary.query("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'").string(0, 0) == "sync"
        }
    }

    /// SIGKILL of the primary's postmaster: its backends die with it, as on a crashed host.
    func killPrimary() throws {
        let pidText = try String(contentsOfFile: primaryData + "/postmaster.pid", encoding: .utf8)
        guard let pid = pidText.split(separator: "\n").first.flatMap({ Int32($0) }) else { throw Failure(description: "no postmaster.pid") }
        kill(pid, SIGKILL)
        try waitUntil("the primary's postmaster is gone", within: 30) { kill(pid, 0) != 0 }
    }

    func promoteStandby() throws {
        try asPostgres(["\(bin)/pg_ctl", "-D", standbyData, "-w", "-t", "60", "promote"])
    }

    func stop() {
        _ = try? asPostgres(["\(bin)/pg_ctl", "-D", standbyData, "-m", "immediate", "-w", "stop"])
        _ = try? asPostgres(["\(bin)/pg_ctl", "-D", primaryData, "-m", "immediate", "-w", "stop"])
        if ProcessInfo.processInfo.environment["OVERSIGHT_KEEP_TEST_LOGS"] == nil { try? FileManager.default.removeItem(atPath: base) }
    }

    @discardableResult
    private func run(_ arguments: [String]) throws -> String {
        let (status, output) = try ChildProcess.run(arguments)
        guard status == 0 else { throw Failure(description: "\(arguments[0]) failed (\(status)): \(output)") }
        return output
    }

    @discardableResult
    private func asPostgres(_ arguments: [String]) throws -> String {
        try run(root ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + arguments : arguments)
    }
}

@Suite(.serialized) struct DatabaseFailoverTests {
    /// The primary is SIGKILLed mid-batch and the synchronous standby promoted. Coordinators,
    /// workers and the client, given both servers with `target_session_attrs=read-write`,
    /// reconnect to the new primary; the leadership lock is taken again there by exactly one
    /// coordinator; nothing committed is lost or done twice, and the seal verifies.
    @Test func thePrimaryDiesAndTheStandbyIsPromoted() throws {
        let database = try ReplicatedDatabase()
        defer { database.stop() }
        let system = try FaultySystem(label: "dbfailover", conninfo: database.conninfo, workers: 0)
        defer { system.stopAll() }
        // A standby coordinator too: it waits on the old primary, and must ride the failover.
        let standbyWorkers = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let standbyClients = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let standby = try RunningProcess(["coordinator", "--database", database.conninfo, "--worker-endpoint", standbyWorkers,
                                          "--client-endpoint", standbyClients, "--heartbeat-interval", "200"],
                                         logPath: system.directory + "/standby-coordinator.log")
        defer { standby.stop() }
        try standby.waitForLog("standby")
        var workers: [RunningProcess] = []
        for n in 0..<2 {
            workers.append(try RunningProcess(["worker", "--coordinator", "\(system.workerEndpoint),\(standbyWorkers)",
                                               "--database", database.conninfo, "--name", "dbfo-\(n)", "--heartbeat-interval", "200"],
                                              logPath: system.directory + "/worker-\(n).log"))
        }
        defer { workers.forEach { $0.stop() } }
        let file = system.directory + "/batch.jsonl"
        try writeRecords(20_000, seed: 41, to: file)
        let submit = try RunningProcess(["submit", file, "--coordinator", "\(system.clientEndpoint),\(standbyClients)", "--wait"],
                                        logPath: system.directory + "/submit.log")
        defer { submit.stop() }
        let deadline = Date().addingTimeInterval(400)
        try waitUntilUnderWay(database.conninfo, until: deadline)
        let primary = try PGConnection(database.direct(database.primaryPort))
        let committedBefore = try primary.query("SELECT count(*) FROM oversight.assessments").int(0, 0) ?? 0
        try database.killPrimary()
        try database.promoteStandby()
        try waitForSubmit(submit, within: max(1, deadline.timeIntervalSinceNow))
        let logs = "\(submit.log)\n\(system.logs)\n--- standby coordinator\n\(standby.log)"
        #expect(submit.stop(grace: 1) == 0, "\(logs)")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try system.expectExactlyOnce(batch: batch, accepted: 20_000, "\(logs)")

        // The new primary is the old standby, and holds everything the old one had committed.
        let promoted = try PGConnection(database.direct(database.standbyPort))
        #expect(try promoted.query("SELECT pg_is_in_recovery()").bool(0, 0) == false)
        #expect((try promoted.query("SELECT count(*) FROM oversight.assessments").int(0, 0) ?? 0) >= committedBefore)
        // Exactly one coordinator holds the leadership lock there, and it is one of ours, alive.
        let holders = try promoted.query("""
            SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'oversight-coordinator'
            """).int(0, 0)
        #expect(holders == 1, "\(logs)")
        #expect(system.coordinator.process.isRunning || standby.process.isRunning, "\(logs)")
        let verify = try OversightBinary.runSplit(["audit", "verify", batch, "--database", database.conninfo])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")

        // Pending facets are unlogged: the promoted standby has none of those written before
        // the failover. The summary derives them from the stored results, and the batch's record
        // lists are whole and say what its results say.
        #expect(try promoted.query("SELECT relpersistence FROM pg_class WHERE oid = 'oversight.pending_facets'::regclass").string(0, 0) == "u")
        try waitUntil("the batch is summarised and listed", within: 300) {
            (try? promoted.query("SELECT listed FROM oversight.batch_summaries WHERE batch_id = \(batch)::uuid").bool(0, 0)) == true
        }
        let facets = try promoted.query("""
            SELECT count(*), count(*) FILTER (WHERE f.verdict = a.verdict AND f.worst_case IS NOT DISTINCT FROM a.worst_case
                                                    AND f.record_id IS NOT DISTINCT FROM a.record_id)
            FROM oversight.record_facets f JOIN oversight.assessments a ON a.batch_id = f.batch_id AND a.seq = f.seq
            WHERE f.batch_id = \(batch)::uuid
            """)
        #expect(facets.int(0, 0) == 20_000 && facets.int(0, 1) == 20_000, "\(logs)")
        let counted = try promoted.query("""
            SELECT sum(records) FROM oversight.batch_counts WHERE batch_id = \(batch)::uuid AND grouping = 'verdict'
            """).int(0, 0)
        #expect(counted == 20_000)
        print("database failover: \(try system.chargedAttempts(batch: batch)) charged attempts; \(submit.log.split(separator: "\n").last ?? "")")
    }
}
