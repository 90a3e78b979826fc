import Foundation
import Testing
import ChildProcess
import LibPQ
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// PostgreSQL on a host of its own (`TestHosts`): a cluster made by `oversight local-db`, then
/// started inside the host's namespace listening on the host's address, with scram-sha-256
/// for the test network in pg_hba.conf and a password file that names any host.
final class NetworkedDatabase: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible { let description: String }
    let directory = NSTemporaryDirectory() + "oversight-netdb-\(UUID().uuidString)"
    let host: TestHosts.Host
    private let hosts: TestHosts
    private let pgdata: String
    private let bin: String
    let passfile: String

    var conninfo: String { "postgresql://postgres@\(host.address):5432/oversight?passfile=\(passfile)" }

    init(on host: TestHosts.Host, of hosts: TestHosts) throws {
        self.host = host
        self.hosts = hosts
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let data = directory + "/data"
        let started = try OversightBinary.runSplit(["local-db", "start", "--data-dir", data, "--unsafe-fast"], timeout: 180)
        guard started.status == 0 else { throw Failure(description: "local-db start: \(started.stderr)") }
        let stopped = try OversightBinary.runSplit(["local-db", "stop", "--data-dir", data], timeout: 60)
        guard stopped.status == 0 else { throw Failure(description: "local-db stop: \(stopped.stderr)") }
        let location = (try? String(contentsOfFile: data + "/oversight.cluster-location", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? data
        pgdata = location + "/pgdata"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted()
        bin = ProcessInfo.processInfo.environment["OVERSIGHT_PG_BINDIR"] ?? "/usr/lib/postgresql/\(versions.last ?? 15)/bin"
        // The test network may connect, with the same password as loopback.
        let subnet = host.address.split(separator: ".").prefix(3).joined(separator: ".") + ".0/24"
        let hba = try FileHandle(forWritingTo: URL(fileURLWithPath: pgdata + "/pg_hba.conf"))
        hba.seekToEndOfFile()
        hba.write(Data("host all all \(subnet) scram-sha-256\n".utf8))
        try hba.close()
        let password = try String(contentsOfFile: data + "/pgpass", encoding: .utf8).split(separator: ":").last.map(String.init) ?? ""
        passfile = directory + "/pgpass"
        guard FileManager.default.createFile(atPath: passfile, contents: Data("*:*:*:postgres:\(password.trimmingCharacters(in: .whitespacesAndNewlines))\n".utf8),
                                             attributes: [.posixPermissions: 0o600]) else { throw Failure(description: "cannot write \(passfile)") }
        try start()
    }

    func start() throws {
        let options = "-p 5432 -c listen_addresses=\(host.address) -c unix_socket_directories='' -c max_connections=200 "
            + "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        let (status, output) = try ChildProcess.run(hosts.on(host, ["/usr/sbin/runuser", "-u", "postgres", "--", "\(bin)/pg_ctl", "-D", pgdata,
                                                                    "-l", pgdata + "/../postgresql.log", "-o", options, "-w", "-t", "60", "start"]))
        guard status == 0 else { throw Failure(description: "pg_ctl start on \(host.name): \(output)") }
    }

    func stop() {
        _ = try? ChildProcess.run(["/usr/sbin/runuser", "-u", "postgres", "--", "\(bin)/pg_ctl", "-D", pgdata, "-m", "immediate", "-w", "stop"])
        if ProcessInfo.processInfo.environment["OVERSIGHT_KEEP_TEST_LOGS"] == nil {
            try? FileManager.default.removeItem(atPath: (pgdata as NSString).deletingLastPathComponent)
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}

/// Coordinators, workers, clients and PostgreSQL as separate hosts on a network the test makes
/// (`TestHosts`), with faults from packet filters and latency from a relay of the test's own.
/// Each test ends with the exactly-once check in PostgreSQL and `audit verify`, and checks the
/// deadlines the system names for itself (Deploy/network-faults.md):
/// - a worker declares a silent coordinator gone after `--heartbeat-interval` × 3, and after the
///   network heals it is back within its reconnect backoff (at most 8 s) plus ZeroMQ's reconnect
///   interval (at most 2 s);
/// - a leader stops dispatching 5 s after its leadership session last confirmed the lock
///   (`LeadershipThread.Deadlines.hold`), PostgreSQL frees the lock about 10 s after it last
///   heard from it (`serverRelease`), and a standby polls for it every 0.25 s;
/// - libpq's own `connect_timeout` (10 s), keepalives (10 s idle, 3 × 3 s) and `tcp_user_timeout`
///   (15 s) bound how long a session waits on a dead link.
@Suite(.serialized) struct NetworkFaultTests {
    struct Net {
        let hosts: TestHosts
        let database: NetworkedDatabase
        let directory: String
        init(_ names: [String]) throws {
            hosts = try TestHosts(["pg"] + names)
            database = try NetworkedDatabase(on: hosts["pg"], of: hosts)
            directory = database.directory
        }
        func endpoint(_ host: String, _ port: Int) -> String { "tcp://\(hosts[host].address):\(port)" }
        func coordinator(on host: String, label: String) throws -> RunningProcess {
            try RunningProcess(["coordinator", "--database", database.conninfo, "--worker-endpoint", endpoint(host, 5555),
                                "--client-endpoint", endpoint(host, 5556), "--heartbeat-interval", "200", "--insecure"],
                               logPath: directory + "/\(label).log", launcher: hosts.launcher(hosts[host]))
        }
        func worker(on host: String, coordinators: String) throws -> RunningProcess {
            try RunningProcess(["worker", "--coordinator", coordinators, "--database", database.conninfo, "--name", "net-\(host)",
                                "--heartbeat-interval", "200", "--insecure"],
                               logPath: directory + "/worker-\(host).log", launcher: hosts.launcher(hosts[host]))
        }
        func submit(_ file: String, coordinators: String, on host: String? = nil) throws -> RunningProcess {
            try RunningProcess(["submit", file, "--coordinator", coordinators, "--wait", "--insecure"], logPath: directory + "/submit.log",
                               launcher: host.map { hosts.launcher(hosts[$0]) } ?? [])
        }
        /// A coordinator on `coord`, workers on `w1` and `w2`, and `submit --wait` of `records`
        /// from the observer, returned once intake is done and the batch is under way.
        func underWay(records: Int, seed: UInt64) throws -> (coordinator: RunningProcess, workers: [RunningProcess], submit: RunningProcess, deadline: Date) {
            let coordinator = try coordinator(on: "coord", label: "coordinator")
            try coordinator.waitForLog("coordinator listening")
            let workers = try ["w1", "w2"].map { try worker(on: $0, coordinators: endpoint("coord", 5555)) }
            let file = directory + "/batch.jsonl"
            try writeRecords(records, seed: seed, to: file)
            let submit = try submit(file, coordinators: endpoint("coord", 5556))
            let deadline = Date().addingTimeInterval(400)
            try waitUntilUnderWay(database.conninfo, until: deadline)
            return (coordinator, workers, submit, deadline)
        }
        func logs(_ processes: [RunningProcess]) -> String {
            processes.map { "--- \($0.logPath)\n" + $0.log.split(separator: "\n").suffix(20).joined(separator: "\n") }.joined(separator: "\n")
        }
        /// Exactly once, no dead letter, completed, sealed and verified.
        func expectExactlyOnce(batch: String, accepted: Int, _ comment: Comment) throws {
            let db = try PGConnection(database.conninfo)
            let rows = try db.query("""
                SELECT (SELECT count(*) FROM oversight.jobs WHERE batch_id = \(batch)::uuid),
                       (SELECT count(*) FROM oversight.assessments WHERE batch_id = \(batch)::uuid),
                       (SELECT count(DISTINCT seq) FROM oversight.assessments WHERE batch_id = \(batch)::uuid),
                       (SELECT count(*) FROM oversight.dead_letters WHERE batch_id = \(batch)::uuid AND retried_at IS NULL),
                       (SELECT state FROM oversight.batch_progress WHERE batch_id = \(batch)::uuid)
                """)
            #expect(rows.int(0, 0) == accepted, "jobs stored")
            #expect(rows.int(0, 1) == accepted, "one assessment per record: \(comment)")
            #expect(rows.int(0, 2) == accepted, "no duplicate")
            #expect(rows.int(0, 3) == 0, "no dead letter: \(comment)")
            #expect(rows.string(0, 4) == "completed", "the batch completes")
            let verify = try OversightBinary.runSplit(["audit", "verify", batch, "--database", database.conninfo])
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        }
        func stop() {
            database.stop()
            hosts.remove()
        }
    }

    /// Waits until `condition`, returning the seconds it took from `since`.
    @discardableResult
    static func seconds(_ what: String, since: Date, within: Double, _ condition: () throws -> Bool) throws -> Double {
        try waitUntil(what, within: within, poll: 0.05, condition)
        return Date().timeIntervalSince(since)
    }

    /// A worker cut off from its coordinator, but not from PostgreSQL, for longer than the
    /// coordinator's liveness: it goes on committing what it holds; the coordinator sends the
    /// rest elsewhere; when the network heals the worker announces itself again (with what it
    /// holds) within its reconnect deadline, and nothing is lost or done twice.
    @Test func aWorkerCutOffFromTheCoordinatorButNotFromPostgres() throws {
        let net = try Net(["coord", "w1", "w2"])
        defer { net.stop() }
        let (coordinator, workers, submit, deadline) = try net.underWay(records: 20_000, seed: 61)
        defer { submit.stop(); workers.forEach { $0.stop() }; coordinator.stop() }
        let db = try PGConnection(net.database.conninfo)
        func byW1() throws -> Int { try db.query("SELECT count(*) FROM oversight.assessments WHERE worker = 'net-w1'").int(0, 0) ?? 0 }

        let atCut = try byW1()
        let cutAt = Date()
        try net.hosts.cut(net.hosts["w1"], from: net.hosts["coord"])
        let noticed = try Self.seconds("w1 notices its coordinator is silent", since: cutAt, within: 30) {
            workers[0].log.components(separatedBy: "coordinator silent").count > 1
        }
        // Cut off well past the coordinator's liveness (0.6 s): it gives w1's leases up.
        try waitUntil("the cut lasts 6 s", within: 10) { Date().timeIntervalSince(cutAt) >= 6 }
        let committedWhileCut = try byW1()
        let rules = net.hosts.ruleset(net.hosts["w1"])
        try net.hosts.heal(net.hosts["w1"])
        let healedAt = Date()
        func readiesOfW1() -> Int { coordinator.log.split(separator: "\n").count { $0.contains("worker ready") && $0.contains("net-w1") } }
        let readiesBefore = readiesOfW1()
        let back = try Self.seconds("w1 announces itself again after the heal", since: healedAt, within: 30) {
            readiesOfW1() > readiesBefore
        }
        try waitForSubmit(submit, within: max(1, deadline.timeIntervalSinceNow))
        let logs = net.logs([submit, coordinator] + workers) + "\n--- w1's rules\n\(rules)"
        #expect(submit.stop(grace: 1) == 0, "\(logs)")
        #expect(noticed < 10, "w1 noticed the cut after \(noticed) s (heartbeat 0.2 s × 3)\n\(logs)")
        // Backoff at most 8 s, ZeroMQ's reconnect interval at most 2 s, and a loaded machine.
        #expect(back < 15, "w1 was back \(back) s after the heal\n\(logs)")
        #expect(rules.contains("drop"), "the cut was made by w1's own rules: \(rules)")
        // Cut off from the coordinator, not from PostgreSQL: w1 committed what it held.
        #expect(committedWhileCut > atCut, "w1 committed \(committedWhileCut - atCut) assessments while cut off\n\(logs)")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try net.expectExactlyOnce(batch: batch, accepted: 20_000, "\(logs)")
        print("network: w1 cut off from its coordinator noticed it after \(String(format: "%.1f", noticed)) s, committed \(committedWhileCut - atCut) while cut, was back \(String(format: "%.1f", back)) s after the heal; \(submit.log.split(separator: "\n").last ?? "")")
    }

    /// The active coordinator cut off from PostgreSQL, but not from its workers and clients:
    /// it stops dispatching (and unbinds) within `Deadlines.hold`, before PostgreSQL frees its
    /// lock; the standby takes over once it is free, the workers and the client move to it, and
    /// when the network heals the old leader finds the lock taken and steps down. Started again
    /// (as systemd would), it is a standby.
    @Test func aCoordinatorCutOffFromPostgresStopsDispatchingBeforeTheStandbyTakesOver() throws {
        let net = try Net(["coordA", "coordB", "w1", "w2"])
        defer { net.stop() }
        let active = try net.coordinator(on: "coordA", label: "coordinator-a")
        defer { active.stop() }
        try active.waitForLog("coordinator listening")
        let standby = try net.coordinator(on: "coordB", label: "coordinator-b")
        defer { standby.stop() }
        try standby.waitForLog("standby")
        let both = "\(net.endpoint("coordA", 5555)),\(net.endpoint("coordB", 5555))"
        let workers = try ["w1", "w2"].map { try net.worker(on: $0, coordinators: both) }
        defer { workers.forEach { $0.stop() } }
        let file = net.directory + "/batch.jsonl"
        try writeRecords(20_000, seed: 62, to: file)
        let submit = try net.submit(file, coordinators: "\(net.endpoint("coordA", 5556)),\(net.endpoint("coordB", 5556))")
        defer { submit.stop() }
        let deadline = Date().addingTimeInterval(400)
        try waitUntilUnderWay(net.database.conninfo, until: deadline)

        let cutAt = Date()
        try net.hosts.cut(net.hosts["coordA"], from: net.hosts["pg"])
        var heldAfter: Double?, tookOverAfter: Double?
        try waitUntil("the leader stops dispatching and the standby takes over", within: 60, poll: 0.05) {
            // The leader first, in each look: a tie is counted in the leader's favour only if
            // both lines are there at the same look.
            if heldAfter == nil && active.log.contains("stopping dispatch") { heldAfter = Date().timeIntervalSince(cutAt) }
            if tookOverAfter == nil && standby.log.contains("taking over") { tookOverAfter = Date().timeIntervalSince(cutAt) }
            return heldAfter != nil && tookOverAfter != nil
        }
        let rules = net.hosts.ruleset(net.hosts["coordA"])
        try net.hosts.heal(net.hosts["coordA"])
        let healedAt = Date()
        let steppedDown = try Self.seconds("the old leader steps down after the heal", since: healedAt, within: 60) { !active.process.isRunning }
        let status = active.stop(grace: 1)
        // Started again, as systemd would: a standby now.
        let restarted = try net.coordinator(on: "coordA", label: "coordinator-a-again")
        defer { restarted.stop() }
        try waitForSubmit(submit, within: max(1, deadline.timeIntervalSinceNow))
        let logs = net.logs([submit, active, standby, restarted] + workers) + "\n--- coordA's rules\n\(rules)"
        #expect(submit.stop(grace: 1) == 0, "\(logs)")
        let held = try #require(heldAfter), tookOver = try #require(tookOverAfter)
        #expect(held <= tookOver, "the old leader stopped dispatching (\(held) s) before the standby took over (\(tookOver) s)\n\(logs)")
        #expect(held < 5 + 1 + 3, "held \(held) s after the cut (hold 5 s, checks every 1 s)\n\(logs)")
        #expect(tookOver < 10 + 1 + 5, "the standby took over \(tookOver) s after the cut (server frees the lock ~10 s after it last heard)\n\(logs)")
        #expect(status == 75, "the old leader stepped down with exit 75, \(steppedDown) s after the heal\n\(logs)")
        #expect(steppedDown < 25, "stepped down \(steppedDown) s after the heal (libpq connect_timeout 10 s)\n\(logs)")
        try restarted.waitForLog("standby", within: 60)
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try net.expectExactlyOnce(batch: batch, accepted: 20_000, "\(logs)")
        let holders = try PGConnection(net.database.conninfo).query("""
            SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'oversight-coordinator'
            """).int(0, 0)
        #expect(holders == 1, "\(logs)")
        print("network: leader cut off from PostgreSQL held after \(String(format: "%.1f", held)) s, standby took over after \(String(format: "%.1f", tookOver)) s, old leader stepped down \(String(format: "%.1f", steppedDown)) s after the heal; \(submit.log.split(separator: "\n").last ?? "")")
    }

    /// A lone coordinator cut off from PostgreSQL for longer than the hold deadline, healed
    /// before anything could take its lock: it holds, then confirms its lock again, listens
    /// again, and its workers take back what they hold; nothing is charged an attempt.
    @Test func aLoneCoordinatorCutOffFromPostgresHoldsAndResumes() throws {
        let net = try Net(["coord", "w1", "w2"])
        defer { net.stop() }
        let (coordinator, workers, submit, deadline) = try net.underWay(records: 20_000, seed: 64)
        defer { submit.stop(); workers.forEach { $0.stop() }; coordinator.stop() }
        let cutAt = Date()
        try net.hosts.cut(net.hosts["coord"], from: net.hosts["pg"])
        let held = try Self.seconds("the coordinator holds", since: cutAt, within: 30) { coordinator.log.contains("stopping dispatch") }
        // Healed before PostgreSQL frees the lock (about 10 s after it last heard from it).
        try net.hosts.heal(net.hosts["coord"])
        let healedAt = Date()
        let resumed = try Self.seconds("the coordinator resumes", since: healedAt, within: 60) { coordinator.log.contains("leadership confirmed again") }
        try waitForSubmit(submit, within: max(1, deadline.timeIntervalSinceNow))
        let logs = net.logs([submit, coordinator] + workers)
        #expect(submit.stop(grace: 1) == 0, "\(logs)")
        #expect(coordinator.process.isRunning, "the coordinator rode through the cut\n\(logs)")
        #expect(held < 5 + 1 + 3, "held \(held) s after the cut\n\(logs)")
        #expect(resumed < 20, "resumed \(resumed) s after the heal (libpq tcp_user_timeout 15 s)\n\(logs)")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try net.expectExactlyOnce(batch: batch, accepted: 20_000, "\(logs)")
        let charged = try PGConnection(net.database.conninfo).query("SELECT count(*) FROM oversight.job_failures WHERE batch_id = \(batch)::uuid").int(0, 0)
        #expect(charged == 0, "no job was charged an attempt for the coordinator's absence\n\(logs)")
        print("network: lone coordinator cut off from PostgreSQL held after \(String(format: "%.1f", held)) s, resumed \(String(format: "%.1f", resumed)) s after the heal; \(submit.log.split(separator: "\n").last ?? "")")
    }

    /// A client on a link that drops a tenth of its packets each way, and workers that reach
    /// their coordinator through a relay adding 20–80 ms to every chunk (reordering what
    /// crosses different connections): the batch completes exactly once.
    @Test func aClientOnALossyLinkAndWorkersBehindALaggingRelay() throws {
        let net = try Net(["coord", "w1", "w2", "client"])
        defer { net.stop() }
        let coordinator = try net.coordinator(on: "coord", label: "coordinator")
        defer { coordinator.stop() }
        try coordinator.waitForLog("coordinator listening")
        let relay = try DelayingRelay(host: net.hosts.observer.address, target: net.hosts["coord"].address, targetPort: 5555,
                                      baseMilliseconds: 20, jitterMilliseconds: 60, seed: 63)
        defer { relay.stop() }
        let workers = try ["w1", "w2"].map { try net.worker(on: $0, coordinators: "tcp://\(net.hosts.observer.address):\(relay.port)") }
        defer { workers.forEach { $0.stop() } }
        try net.hosts.lose(net.hosts["client"], percent: 10)
        let file = net.directory + "/batch.jsonl"
        try writeRecords(20_000, seed: 63, to: file)
        let submit = try net.submit(file, coordinators: net.endpoint("coord", 5556), on: "client")
        defer { submit.stop() }
        try waitForSubmit(submit, within: 400)
        let rules = net.hosts.ruleset(net.hosts["client"])
        let logs = net.logs([submit, coordinator] + workers) + "\n--- client's rules\n\(rules)"
        #expect(submit.stop(grace: 1) == 0, "\(logs)")
        let dropped = rules.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: "packets ") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }.reduce(0, +)
        #expect(dropped > 0, "the client's rules dropped packets: \(rules)")
        #expect(relay.chunks > 100, "the workers' traffic crossed the relay (\(relay.chunks) chunks)")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try net.expectExactlyOnce(batch: batch, accepted: 20_000, "\(logs)")
        print("network: lossy client (\(dropped) packets dropped), workers behind a 20–80 ms relay (\(relay.chunks) chunks); \(submit.log.split(separator: "\n").last ?? "")")
    }
}
