import Foundation
import Testing
import Assessment
import LibPQ
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A system whose processes the test kills and restarts.
final class FaultySystem: @unchecked Sendable {
    let conninfo: String
    let workerEndpoint: String
    let clientEndpoint: String
    let directory: String
    let coordinatorArguments: [String]
    var coordinator: RunningProcess!
    var workers: [RunningProcess?] = []
    var workerEnvironment: [String: String] = [:]
    /// What workers are given as `--coordinator` (an active and a standby: both endpoints).
    var workerCoordinators: String
    private var restarts = 0
    private let lock = NSLock()

    /// Environment of the next coordinator started (fault injection).
    var coordinatorEnvironment: [String: String]

    init(label: String, conninfo: String? = nil, workers: Int, coordinatorOptions: [String] = [],
         coordinatorEnvironment: [String: String] = [:], waitUntilListening: Bool = true) throws {
        self.coordinatorEnvironment = coordinatorEnvironment
        self.conninfo = try conninfo ?? TestDatabase.create(label)
        workerEndpoint = "tcp://127.0.0.1:\(freeLoopbackPort())"
        workerCoordinators = workerEndpoint
        clientEndpoint = "tcp://127.0.0.1:\(freeLoopbackPort())"
        directory = NSTemporaryDirectory() + "oversight-fault-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        coordinatorArguments = ["coordinator", "--database", self.conninfo, "--worker-endpoint", workerEndpoint,
                                "--client-endpoint", clientEndpoint, "--heartbeat-interval", "200"] + coordinatorOptions
        try startCoordinator()
        self.workers = Array(repeating: nil, count: workers)
        if waitUntilListening { try coordinator.waitForLog("coordinator listening") }
    }

    func startCoordinator() throws {
        lock.lock(); defer { lock.unlock() }
        restarts += 1
        coordinator = try RunningProcess(coordinatorArguments, logPath: directory + "/coordinator-\(restarts).log",
                                         environment: coordinatorEnvironment)
    }

    func startWorker(_ n: Int) throws {
        lock.lock(); defer { lock.unlock() }
        restarts += 1
        workers[n] = try RunningProcess(["worker", "--coordinator", workerCoordinators, "--database", conninfo,
                                         "--name", "fault-\(n)-\(restarts)", "--heartbeat-interval", "200"],
                                        logPath: directory + "/worker-\(n)-\(restarts).log", environment: workerEnvironment)
    }

    func startWorkers() throws { for n in workers.indices { try startWorker(n) } }

    /// Restarts every worker that has died; returns how many.
    @discardableResult
    func reviveWorkers() throws -> Int {
        var revived = 0
        for n in workers.indices where workers[n].map({ !$0.process.isRunning }) ?? true {
            try startWorker(n)
            revived += 1
        }
        return revived
    }

    func submitInBackground(_ file: String, _ extra: [String] = []) throws -> RunningProcess {
        try RunningProcess(["submit", file, "--coordinator", clientEndpoint, "--wait"] + extra, logPath: directory + "/submit.log")
    }

    func stopAll() {
        for w in workers { w?.stop() }
        coordinator.stop()
    }

    var logs: String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().filter { $0.hasSuffix(".log") }.map { name in
            let text = (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
            return "--- \(name)\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// The invariants every fault test ends with, checked in PostgreSQL.
    func expectExactlyOnce(batch: String, accepted: Int, deadLetters expected: [Int64] = [], _ comment: Comment? = nil) throws {
        let db = try PGConnection(conninfo)
        let rows = try db.query("""
            SELECT (SELECT count(*) FROM oversight.jobs WHERE batch_id = \(batch)::uuid),
                   (SELECT count(*) FROM oversight.assessments WHERE batch_id = \(batch)::uuid),
                   (SELECT count(DISTINCT seq) FROM oversight.assessments WHERE batch_id = \(batch)::uuid),
                   (SELECT count(*) FROM oversight.jobs j WHERE batch_id = \(batch)::uuid
                        AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = j.batch_id AND a.seq = j.seq)
                        AND NOT EXISTS (SELECT 1 FROM oversight.dead_letters d WHERE d.batch_id = j.batch_id AND d.seq = j.seq AND d.retried_at IS NULL)),
                   (SELECT state FROM oversight.batch_progress WHERE batch_id = \(batch)::uuid),
                   ARRAY(SELECT seq FROM oversight.dead_letters d WHERE batch_id = \(batch)::uuid AND retried_at IS NULL
                         AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = d.batch_id AND a.seq = d.seq) ORDER BY seq)::text
            """)
        #expect(rows.int(0, 0) == accepted, "jobs stored")
        #expect(rows.int(0, 1) == accepted - expected.count, "one assessment per accepted record, except dead letters")
        #expect(rows.int(0, 1) == rows.int(0, 2), "no duplicate assessments")
        #expect(rows.int(0, 3) == 0, "no job lost: every job is assessed or dead-lettered")
        #expect(rows.string(0, 4) == "completed", "the batch completes")
        #expect(rows.string(0, 5) == "{" + expected.map(String.init).joined(separator: ",") + "}", "dead letters exactly where expected")
    }

    /// Failed attempts recorded for the batch (jobs lost with others are re-sent uncharged).
    func chargedAttempts(batch: String) throws -> Int {
        try PGConnection(conninfo).query("SELECT count(*) FROM oversight.job_failures WHERE batch_id = \(batch)::uuid").int(0, 0) ?? -1
    }

    deinit { if ProcessInfo.processInfo.environment["OVERSIGHT_KEEP_TEST_LOGS"] == nil { try? FileManager.default.removeItem(atPath: directory) } }
}

func writeRecords(_ count: Int, seed: UInt64, to path: String, extra: [String] = []) throws {
    var text = ""
    text.reserveCapacity(count * 500)
    for record in SyntheticDeployments(count: count, seed: seed) { text += record.canonicalString + "\n" }
    for line in extra { text += line + "\n" }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// Waits until intake is done and more than 2,000 records are assessed: the moment to strike.
func waitUntilUnderWay(_ conninfo: String, until deadline: Date) throws {
    let db = try PGConnection(conninfo)
    try waitUntil("intake done and over 2,000 assessed", within: max(1, deadline.timeIntervalSinceNow)) {
        let progress = try db.query("SELECT coalesce(max(assessed), 0), bool_or(state = 'running') FROM oversight.batch_progress")
        return (progress.int(0, 0) ?? 0) > 2_000 && progress.bool(0, 1) == true
    }
}

/// Waits until `submit` has finished (it rides through the faults), doing `meanwhile` at each look.
func waitForSubmit(_ submit: RunningProcess, within seconds: Double, meanwhile: () throws -> Void = {}) throws {
    try waitUntil("submit finished", within: seconds) {
        try meanwhile()
        return !submit.process.isRunning
    }
}

func batchID(fromSubmitLog log: String) -> String? {
    log.split(separator: "\n").map(String.init).first { UUID(uuidString: $0) != nil }
}

@Suite(.serialized) struct FaultTests {
    /// 4. A poison record that kills its worker every time it is scored: retried alone, then
    /// dead-lettered; every other record is assessed exactly once.
    @Test func aPoisonRecordIsDeadLettered() throws {
        let system = try FaultySystem(label: "poison", workers: 2)
        system.workerEnvironment = ["OVERSIGHT_FAULT_CRASH_ON_ID": "POISON"]
        try system.startWorkers()
        let file = system.directory + "/batch.jsonl"
        try writeRecords(2_000, seed: 21, to: file, extra: [#"{"id":"POISON","system":{"type":"alpr"}}"#])
        let submit = try system.submitInBackground(file)
        try waitForSubmit(submit, within: 120) { try system.reviveWorkers() }
        #expect(submit.stop(grace: 1) == 0, "\(submit.log)\n\(system.logs)")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try system.expectExactlyOnce(batch: batch, accepted: 2_001, deadLetters: [2_001])
        let db = try PGConnection(system.conninfo)
        let history = try db.query("SELECT count(*), max(attempt) FROM oversight.job_failures WHERE batch_id = \(batch)::uuid AND seq = 2001")
        #expect(history.int(0, 0) == 3, "every attempt is in the history")
        #expect(history.int(0, 1) == 3)
        let letter = try db.query("SELECT attempts, last_error FROM oversight.dead_letters WHERE batch_id = \(batch)::uuid")
        #expect(letter.int(0, 0) == 3)
        #expect(letter.string(0, 1)?.contains("lost while holding the job") == true)
        // Checked without Oversight: the seal accounts for the dead letter.
        let first = try exportAndCheck(batch: batch, conninfo: system.conninfo, into: system.directory + "/export-1")
        #expect(first.status == 0 && first.output.contains("verified: 2000 assessments; 1 seal(s)"), "\(first.output)")

        // `deadletters` lists it; with the fault gone, `retry` assesses it and clears the list.
        let listed = try OversightBinary.runSplit(["deadletters", batch, "--json", "--database", system.conninfo])
        #expect(listed.status == 0)
        #expect(listed.stdout.split(separator: "\n").count == 1)
        #expect(listed.stdout.contains("\"seq\":2001"))
        #expect(listed.stdout.contains("\"line\":2001"))
        for w in system.workers { w?.stop() }
        system.workerEnvironment = [:]
        try system.startWorkers()
        let retried = try OversightBinary.runSplit(["retry", batch, "--coordinator", system.clientEndpoint])
        #expect(retried.status == 0, "\(retried.stderr)")
        // Completion is recorded by the seal thread after the last assessment: wait for it.
        try eventually("the retried batch completes", {
            try db.query("SELECT state || ' ' || assessed FROM oversight.batch_progress WHERE batch_id = \(batch)::uuid").string(0, 0)
        }, until: { $0 == "completed 2001" })
        try system.expectExactlyOnce(batch: batch, accepted: 2_001)
        let empty = try OversightBinary.runSplit(["deadletters", batch, "--database", system.conninfo])
        #expect(empty.stdout == "no dead letters\n")
        // Two seals now, the first covering 2,000 rows and a dead letter, the second all 2,001.
        let second = try exportAndCheck(batch: batch, conninfo: system.conninfo, into: system.directory + "/export-2")
        #expect(second.status == 0 && second.output.contains("verified: 2001 assessments; 2 seal(s)"), "\(second.output)")
        system.stopAll()
    }

    /// 1. SIGKILL a worker every few seconds during a 100,000-record batch with 3 workers.
    @Test func workersKilledEveryFewSeconds() throws {
        let system = try FaultySystem(label: "killworkers", workers: 3)
        try system.startWorkers()
        let file = system.directory + "/batch.jsonl"
        try writeRecords(100_000, seed: 22, to: file)
        let submit = try system.submitInBackground(file)
        var kills = 0
        var lastKill = Date()
        // The fault's cadence is wall-clock time (a kill every 2 s); the wait is for the submission.
        try waitForSubmit(submit, within: 600) {
            if Date().timeIntervalSince(lastKill) > 2 {
                let victim = kills % 3
                if let worker = system.workers[victim], worker.process.isRunning { kill(worker.process.processIdentifier, SIGKILL) }
                kills += 1
                lastKill = Date()
            }
            try system.reviveWorkers()
        }
        #expect(submit.stop(grace: 1) == 0, "\(submit.log)\n\(system.logs)")
        #expect(kills >= 2, "the batch outlived at least two kills")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try system.expectExactlyOnce(batch: batch, accepted: 100_000)
        print("fault test 1: \(kills) worker kills, \(try system.chargedAttempts(batch: batch)) charged attempts; \(submit.log.split(separator: "\n").last ?? "")")
        system.stopAll()
    }

    /// 2. SIGKILL the coordinator mid-batch and start it again; `submit --wait` rides through.
    @Test func coordinatorKilledAndRestarted() throws {
        let system = try FaultySystem(label: "killcoord", workers: 2)
        try system.startWorkers()
        let file = system.directory + "/batch.jsonl"
        try writeRecords(30_000, seed: 23, to: file)
        let submit = try system.submitInBackground(file)
        let deadline = Date().addingTimeInterval(300)
        try waitUntilUnderWay(system.conninfo, until: deadline)
        kill(system.coordinator.process.processIdentifier, SIGKILL)
        system.coordinator.process.waitUntilExit()
        try system.startCoordinator()
        try waitForSubmit(submit, within: max(1, deadline.timeIntervalSinceNow))
        #expect(submit.stop(grace: 1) == 0, "\(submit.log)\n\(system.logs)")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try system.expectExactlyOnce(batch: batch, accepted: 30_000)
        print("fault test 2: \(try system.chargedAttempts(batch: batch)) charged attempts; \(submit.log.split(separator: "\n").last ?? "")")
        system.stopAll()
    }
}

extension FaultTests {
    /// 2b. SIGKILL the coordinator while the batch is still being sent: `submit` notices within
    /// seconds (its heartbeats go unanswered), says so, and when a coordinator is back opens the
    /// batch again and resumes after the last chunk the store kept; nothing lost, nothing twice.
    /// `--timeout 60`: without heartbeats the silence would last a minute, not seconds.
    @Test func coordinatorKilledDuringIntake() throws {
        let system = try FaultySystem(label: "killintake", workers: 2)
        try system.startWorkers()
        let file = system.directory + "/batch.jsonl"
        try writeRecords(60_000, seed: 29, to: file)
        let submit = try system.submitInBackground(file, ["--timeout", "60"])
        let db = try PGConnection(system.conninfo)
        let deadline = Date().addingTimeInterval(300)
        try waitUntil("three chunks stored", poll: 0.005) {
            (try db.query("SELECT coalesce(max(acknowledged_chunks), 0) FROM oversight.batches").int64(0, 0) ?? 0) >= 3
        }
        kill(system.coordinator.process.processIdentifier, SIGKILL)
        system.coordinator.process.waitUntilExit()
        let storedAtKill = try db.query("SELECT max(acknowledged_chunks) FROM oversight.batches").int64(0, 0) ?? 0
        if storedAtKill < 60 {
            // The client's liveness is 5 s; the deadline leaves a loaded machine room, and is far
            // below the 60 s a reply deadline alone would take.
            do {
                try waitUntil("submit says its coordinator stopped answering", within: 20) { submit.log.contains("stopped answering") }
            } catch {
                Issue.record("submit said:\n\(submit.log)")
                throw error
            }
        }
        try system.startCoordinator()
        try system.coordinator.waitForLog("coordinator listening")
        if storedAtKill < 60 {
            try waitUntil("submit resumes with the new coordinator", within: 20) { submit.log.contains("resuming batch") }
        }
        try waitForSubmit(submit, within: max(1, deadline.timeIntervalSinceNow))
        #expect(submit.stop(grace: 1) == 0, "\(submit.log)\n\(system.logs)")
        #expect(storedAtKill < 60, "killed during intake (\(storedAtKill) of 60 chunks stored)")
        #expect(submit.log.contains("resuming"), "\(submit.log)")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try system.expectExactlyOnce(batch: batch, accepted: 60_000)
        system.stopAll()
    }

    /// A coordinator killed and started again at once, while `submit --wait` waits for the batch:
    /// the new process answers the client's heartbeat with another instance, and the client
    /// asks it again at once instead of waiting out a reply deadline.
    @Test func aReplacedCoordinatorIsNoticedAtOnce() throws {
        let system = try FaultySystem(label: "replaced", workers: 1)
        let file = system.directory + "/batch.jsonl"
        try writeRecords(200, seed: 37, to: file)
        // No worker: the batch stays running, and submit waits in STATUS polls.
        let submit = try system.submitInBackground(file, ["--timeout", "60"])
        let db = try PGConnection(system.conninfo)
        try waitUntil("intake closed", within: 60) {
            (try db.query("SELECT count(*) FROM oversight.batches WHERE intake_closed_at IS NOT NULL").int64(0, 0) ?? 0) == 1
        }
        kill(system.coordinator.process.processIdentifier, SIGKILL)
        system.coordinator.process.waitUntilExit()
        try system.startCoordinator()
        try system.coordinator.waitForLog("coordinator listening")
        try waitUntil("submit notices the new coordinator", within: 20) {
            submit.log.contains("restarted or a standby took over") || submit.log.contains("stopped answering")
        }
        try system.startWorker(0)
        try waitForSubmit(submit, within: 120)
        #expect(submit.stop(grace: 1) == 0, "\(submit.log)\n\(system.logs)")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try system.expectExactlyOnce(batch: batch, accepted: 200)
        system.stopAll()
    }
}

/// A batch submitted with `--wait` to a coordinator that kills itself at an injected point
/// (a test-suite-only environment variable): the run waits until it has died.
struct FaultInjectedRun {
    let system: FaultySystem
    let submit: RunningProcess
    let db: PGConnection
    let deadline = Date().addingTimeInterval(300)

    init(label: String, fault: String, records: Int, seed: UInt64) throws {
        system = try FaultySystem(label: label, workers: 2, coordinatorEnvironment: [fault: "1"])
        try system.startWorkers()
        let file = system.directory + "/batch.jsonl"
        try writeRecords(records, seed: seed, to: file)
        submit = try system.submitInBackground(file, ["--timeout", "3"])
        try waitUntil("the coordinator dies at the injected point", within: 300) { [system] in !system.coordinator.process.isRunning }
        db = try PGConnection(system.conninfo)
    }

    /// Starts a coordinator without the fault and waits for `submit --wait` to finish; the batch.
    func restartAndFinish() throws -> String {
        system.coordinatorEnvironment = [:]
        try system.startCoordinator()
        try waitForSubmit(submit, within: max(1, deadline.timeIntervalSinceNow))
        #expect(submit.stop(grace: 1) == 0, "\(submit.log)\n\(system.logs)")
        return try #require(batchID(fromSubmitLog: submit.log))
    }
}

extension FaultTests {
    /// The coordinator dies with a batch's CLOSE committed but unanswered: the resumed submit
    /// finds the intake closed, which means every chunk was stored, and goes on to wait.
    @Test func coordinatorKilledAfterClosingIntake() throws {
        let run = try FaultInjectedRun(label: "killclose", fault: "OVERSIGHT_FAULT_DIE_AFTER_CLOSE", records: 5_000, seed: 31)
        #expect(try run.db.query("SELECT count(*) FROM oversight.batches WHERE intake_closed_at IS NOT NULL").int64(0, 0) == 1,
                "the coordinator died after committing the close")
        let batch = try run.restartAndFinish()
        #expect(run.submit.log.contains("intake was closed before the coordinator stopped"), "\(run.submit.log)")
        try run.system.expectExactlyOnce(batch: batch, accepted: 5_000)
        run.system.stopAll()
    }
}

extension FaultTests {
    /// The coordinator dies between sealing a batch and recording it completed: started again,
    /// it completes the batch, which keeps one seal that `audit verify` accepts.
    @Test func coordinatorKilledBetweenSealAndCompletion() throws {
        let run = try FaultInjectedRun(label: "killseal", fault: "OVERSIGHT_FAULT_DIE_AFTER_SEAL", records: 3_000, seed: 37)
        #expect(try run.db.query("SELECT count(*) FROM oversight.batch_seals").int64(0, 0) == 1, "sealed before it died")
        #expect(try run.db.query("SELECT count(*) FROM oversight.batches WHERE completed_at IS NULL").int64(0, 0) == 1, "not yet completed")
        let batch = try run.restartAndFinish()
        try run.system.expectExactlyOnce(batch: batch, accepted: 3_000)
        #expect(try run.db.query("SELECT count(*) FROM oversight.batches WHERE completed_at IS NOT NULL").int64(0, 0) == 1)
        #expect(try run.db.query("SELECT count(*) FROM oversight.batch_seals").int64(0, 0) == 1, "sealing the same rows again adds no seal")
        let verify = try OversightBinary.runSplit(["audit", "verify", batch, "--database", run.system.conninfo])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        run.system.stopAll()
    }
}

extension FaultTests {
    /// Sealing has a thread and a connection of its own: while one batch's seal takes long,
    /// another batch is taken in, assessed and visible.
    @Test func otherBatchesRunWhileABatchIsSealed() throws {
        let system = try FaultySystem(label: "slowseal", workers: 2, coordinatorEnvironment: ["OVERSIGHT_FAULT_SEAL_DELAY_MS": "4000"])
        try system.startWorkers()
        let first = system.directory + "/first.jsonl", second = system.directory + "/second.jsonl"
        try writeRecords(500, seed: 41, to: first)
        try writeRecords(10, seed: 43, to: second)
        let db = try PGConnection(system.conninfo)
        let deadline = Date().addingTimeInterval(120)
        // The first batch: all assessed, its seal under way.
        let firstSubmit = try OversightBinary.runSplit(["submit", first, "--coordinator", system.clientEndpoint], timeout: 60)
        #expect(firstSubmit.status == 0, "\(firstSubmit.stderr)")
        let firstID = try #require(batchID(fromSubmitLog: firstSubmit.stdout))
        try waitUntil("the first batch assessed", within: max(1, deadline.timeIntervalSinceNow), poll: 0.02) {
            try db.query("SELECT count(*) FROM oversight.assessments WHERE batch_id = \(firstID)::uuid").int64(0, 0) == 500
        }
        // The second batch, submitted and fully assessed while the first is still being sealed.
        let secondSubmit = try OversightBinary.runSplit(["submit", second, "--coordinator", system.clientEndpoint], timeout: 60)
        #expect(secondSubmit.status == 0, "\(secondSubmit.stderr)")
        let secondID = try #require(batchID(fromSubmitLog: secondSubmit.stdout))
        try waitUntil("the second batch assessed", within: max(1, deadline.timeIntervalSinceNow), poll: 0.02) {
            try db.query("SELECT count(*) FROM oversight.assessments WHERE batch_id = \(secondID)::uuid").int64(0, 0) == 10
        }
        #expect(try db.query("SELECT count(*) FROM oversight.assessments WHERE batch_id = \(secondID)::uuid").int64(0, 0) == 10)
        #expect(try db.query("SELECT completed_at IS NULL FROM oversight.batches WHERE batch_id = \(firstID)::uuid").bool(0, 0) == true,
                "the first batch was still being sealed when the second was assessed")
        // Both complete, each with its seal.
        try waitUntil("both batches complete", within: max(1, deadline.timeIntervalSinceNow)) {
            try db.query("SELECT count(*) FROM oversight.batches WHERE completed_at IS NOT NULL").int64(0, 0) == 2
        }
        #expect(try db.query("SELECT count(DISTINCT batch_id) FROM oversight.batch_seals").int64(0, 0) == 2)
        system.stopAll()
    }
}

@Suite(.serialized) struct FailoverTests {
    /// 5. A standby coordinator on the same database takes over when the active one dies.
    @Test func theStandbyTakesOver() throws {
        let conninfo = try TestDatabase.create("failover")
        let active = try FaultySystem(label: "failover", conninfo: conninfo, workers: 0)
        // The first coordinator is active (FaultySystem waits for it) before the second starts.
        #expect(active.coordinator.log.contains("coordinator listening"))
        let standbyWorkers = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let standbyClients = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let standby = try RunningProcess(["coordinator", "--database", conninfo, "--worker-endpoint", standbyWorkers,
                                          "--client-endpoint", standbyClients, "--heartbeat-interval", "200"],
                                         logPath: active.directory + "/standby.log")
        defer { standby.stop() }
        // Workers and the client know both coordinators.
        var workers: [RunningProcess] = []
        for n in 0..<2 {
            workers.append(try RunningProcess(["worker", "--coordinator", "\(active.workerEndpoint),\(standbyWorkers)", "--database", conninfo,
                                               "--name", "fo-\(n)", "--heartbeat-interval", "200"], logPath: active.directory + "/w\(n).log"))
        }
        defer { workers.forEach { $0.stop() } }
        let file = active.directory + "/batch.jsonl"
        try writeRecords(30_000, seed: 24, to: file)
        let submit = try RunningProcess(["submit", file, "--coordinator", "\(active.clientEndpoint),\(standbyClients)", "--wait"],
                                        logPath: active.directory + "/submit.log")
        let deadline = Date().addingTimeInterval(300)
        try waitUntilUnderWay(conninfo, until: deadline)
        #expect(standby.log.contains("standby"), "the second coordinator waits: \(standby.log)")
        kill(active.coordinator.process.processIdentifier, SIGKILL)
        try waitForSubmit(submit, within: max(1, deadline.timeIntervalSinceNow))
        #expect(submit.stop(grace: 1) == 0, "\(submit.log)\n\(standby.log)")
        #expect(standby.log.contains("taking over"))
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try active.expectExactlyOnce(batch: batch, accepted: 30_000)
        print("fault test 5: \(try active.chargedAttempts(batch: batch)) charged attempts; \(submit.log.split(separator: "\n").last ?? "")")
    }
}

@Suite(.serialized) struct DatabaseOutageTests {
    /// 3. Restart PostgreSQL mid-batch (its own cluster, so other tests are not disturbed).
    @Test func postgresRestartsMidBatch() throws {
        let dataDir = NSTemporaryDirectory() + "oversight-outage-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        chmod(dataDir, 0o755)
        defer {
            _ = try? OversightBinary.runSplit(["local-db", "stop", "--data-dir", dataDir])
            try? FileManager.default.removeItem(atPath: dataDir)
        }
        let started = try OversightBinary.runSplit(["local-db", "start", "--data-dir", dataDir, "--unsafe-fast"], timeout: 120)
        #expect(started.status == 0, "\(started.stderr)")
        let conninfo = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let system = try FaultySystem(label: "outage", conninfo: conninfo, workers: 2)
        try system.startWorkers()
        let file = system.directory + "/batch.jsonl"
        try writeRecords(30_000, seed: 25, to: file)
        let submit = try system.submitInBackground(file)
        let deadline = Date().addingTimeInterval(300)
        try waitUntilUnderWay(conninfo, until: deadline)
        let stopped = try OversightBinary.runSplit(["local-db", "stop", "--data-dir", dataDir], timeout: 60)
        #expect(stopped.status == 0, "\(stopped.stderr)")
        // Down until the services notice, then back.
        try waitUntil("a service notices the outage") {
            ([system.coordinator] + system.workers.compactMap { $0 }).contains { $0.log.contains("retrying") || $0.log.contains("reconnect") }
        }
        let restarted = try OversightBinary.runSplit(["local-db", "start", "--data-dir", dataDir, "--unsafe-fast"], timeout: 120)
        #expect(restarted.status == 0, "\(restarted.stderr)")
        try waitForSubmit(submit, within: max(1, deadline.timeIntervalSinceNow))
        #expect(submit.stop(grace: 1) == 0, "\(submit.log)\n\(system.logs)")
        #expect(system.coordinator.process.isRunning, "the coordinator rode through the outage")
        #expect(system.workers.allSatisfy { $0?.process.isRunning == true }, "no worker crashed")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try system.expectExactlyOnce(batch: batch, accepted: 30_000)
        print("fault test 3: \(try system.chargedAttempts(batch: batch)) charged attempts; \(submit.log.split(separator: "\n").last ?? "")")
        system.stopAll()
    }
}

@Suite struct CancellationTests {
    @Test func cancellingStopsDispatchAndKeepsWhatIsDone() throws {
        let system = try FaultySystem(label: "cancel", workers: 1)
        try system.startWorkers()
        let file = system.directory + "/batch.jsonl"
        try writeRecords(50_000, seed: 26, to: file)
        let submitted = try OversightBinary.runSplit(["submit", file, "--coordinator", system.clientEndpoint])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let batch = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let cancelled = try OversightBinary.runSplit(["cancel", batch, "--coordinator", system.clientEndpoint])
        #expect(cancelled.status == 0, "\(cancelled.stderr)")
        #expect(cancelled.stdout.contains("cancelled"))
        let db = try PGConnection(system.conninfo)
        let state = try db.query("SELECT state FROM oversight.batch_progress WHERE batch_id = \(batch)::uuid")
        #expect(state.string(0, 0) == "cancelled")
        // Jobs already at the worker finish: wait until the worker holds none (its log says each
        // bundle it writes; the coordinator's count of leases is the condition), then nothing more comes.
        func assessed() throws -> Int { try db.query("SELECT count(*) FROM oversight.assessments WHERE batch_id = \(batch)::uuid").int(0, 0) ?? -1 }
        var readings: [Int] = []
        let settled = try eventually("assessments stop once the jobs at the worker are done", {
            readings.append(try assessed())
            return readings.suffix(10)
        }, until: { $0.count == 10 && Set($0).count == 1 })
        #expect(settled.last! < 50_000, "dispatch stopped")
        let dupes = try db.query("SELECT count(*) - count(DISTINCT seq) FROM oversight.assessments WHERE batch_id = \(batch)::uuid")
        #expect(dupes.int(0, 0) == 0)
        system.stopAll()
    }
}

extension FaultTests {
    /// Every fault at once, as production has them: a worker SIGKILLed every 2 s, the active
    /// coordinator every 10 s (a standby takes over; the killed one comes back as a standby),
    /// PostgreSQL restarted every 15 s, and every process that exits started again as systemd
    /// would. The batch completes with one assessment per record, no dead letter (every record
    /// is healthy), sealed, and `audit verify` passes. (200,000 records here, or
    /// OVERSIGHT_STORM_RECORDS; the closing note of issue 15 gives the full storm at 1,000,000.)
    @Test func aStormOfOverlappingFaults() throws {
        let records = Int(ProcessInfo.processInfo.environment["OVERSIGHT_STORM_RECORDS"] ?? "") ?? 200_000
        let dataDir = NSTemporaryDirectory() + "oversight-storm-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer {
            _ = try? OversightBinary.runSplit(["local-db", "stop", "--data-dir", dataDir])
            try? FileManager.default.removeItem(atPath: dataDir)
        }
        let started = try OversightBinary.runSplit(["local-db", "start", "--data-dir", dataDir, "--unsafe-fast"], timeout: 120)
        #expect(started.status == 0, "\(started.stderr)")
        let conninfo = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let active = try FaultySystem(label: "storm", conninfo: conninfo, workers: 3)
        let standby = try FaultySystem(label: "storm", conninfo: conninfo, workers: 0, waitUntilListening: false)
        defer { active.stopAll(); standby.stopAll() }
        active.workerCoordinators = "\(active.workerEndpoint),\(standby.workerEndpoint)"
        try active.startWorkers()
        let file = active.directory + "/batch.jsonl"
        try writeRecords(records, seed: 53, to: file)
        let submit = try RunningProcess(["submit", file, "--coordinator", "\(active.clientEndpoint),\(standby.clientEndpoint)", "--wait"],
                                        logPath: active.directory + "/submit.log")
        defer { submit.stop() }
        let begin = Date()
        var next = (worker: begin.addingTimeInterval(2), coordinator: begin.addingTimeInterval(10), database: begin.addingTimeInterval(15))
        var faults = (workers: 0, coordinators: 0, database: 0)
        var generator = SplitMix64(seed: 53)
        // OVERSIGHT_STORM_CALM: the same run without faults, the wall time to compare with.
        let calm = ProcessInfo.processInfo.environment["OVERSIGHT_STORM_CALM"] != nil
        try waitForSubmit(submit, within: Double(max(900, records / 500))) {
            if calm { return }
            let now = Date()
            if now >= next.worker {
                next.worker = now.addingTimeInterval(2)
                let running = active.workers.compactMap { $0 }.filter { $0.process.isRunning }
                if let victim = running.randomElement(using: &generator) {
                    kill(victim.process.processIdentifier, SIGKILL)
                    victim.process.waitUntilExit()
                    faults.workers += 1
                }
            }
            if now >= next.coordinator {
                next.coordinator = now.addingTimeInterval(10)
                // The active one is the one whose current run has bound its endpoints.
                if let leader = [active, standby].first(where: { $0.coordinator.process.isRunning && $0.coordinator.log.contains("coordinator listening") }) {
                    kill(leader.coordinator.process.processIdentifier, SIGKILL)
                    leader.coordinator.process.waitUntilExit()
                    faults.coordinators += 1
                }
            }
            if now >= next.database {
                next.database = now.addingTimeInterval(15)
                _ = try OversightBinary.runSplit(["local-db", "stop", "--data-dir", dataDir], timeout: 60)
                _ = try OversightBinary.runSplit(["local-db", "start", "--data-dir", dataDir, "--unsafe-fast"], timeout: 120)
                faults.database += 1
            }
            // systemd: whatever exited is started again.
            try active.reviveWorkers()
            for system in [active, standby] where !system.coordinator.process.isRunning { try system.startCoordinator() }
        }
        let seconds = Date().timeIntervalSince(begin)
        let logs = "\(submit.log.split(separator: "\n").suffix(30).joined(separator: "\n"))\n\(active.logs)\n\(standby.logs)"
        #expect(submit.stop(grace: 1) == 0, "\(logs)")
        let batch = try #require(batchID(fromSubmitLog: submit.log), "\(logs)")
        try active.expectExactlyOnce(batch: batch, accepted: records, "\(logs)")
        let verify = try OversightBinary.runSplit(["audit", "verify", batch, "--database", conninfo])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        // Redeliveries: results a worker wrote that were stored already (each worker logs them).
        let redelivered = [active.directory, standby.directory].flatMap { directory in
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("worker-") }.map { directory + "/" + $0 }
        }.reduce(0) { total, path in
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return total + text.split(separator: "\n").reduce(0) { sum, line in
                guard let range = line.range(of: "already_stored=") else { return sum }
                return sum + (Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0)
            }
        }
        print("storm: \(records) records in \(String(format: "%.0f", seconds)) s; \(faults.workers) workers, \(faults.coordinators) coordinators killed, PostgreSQL restarted \(faults.database) times; \(try active.chargedAttempts(batch: batch)) charged attempts, \(redelivered) results redelivered and kept once")
    }
}

