import Identifiers
import Assessment
import ChildProcess
import Foundation
import Wire
import AuditStore

/// One batch through a coordinator and workers started as separate processes, timed from the
/// first byte submitted to the last assessment committed, with 10-record batches submitted while
/// it runs; its seal, `audit verify`, and the WAL and disk it took; then a 10-record batch on an
/// idle fleet, timed until all its results are visible in PostgreSQL.
struct EndToEndRun {
    let conninfo: String
    let records: Int
    let seed: UInt64
    let workers: Int
    let directory: String
    var showProgress = false

    struct Result {
        var seconds = 0.0
        /// Until the batch is completed and sealed.
        var sealedSeconds = 0.0
        var assessmentsPerSecond = 0.0
        var p50Milliseconds = 0.0
        var p99Milliseconds = 0.0
        var coordinatorPeakRSSMiB = 0.0
        var workerPeakRSSMiB: [Double] = []
        var oversightCPUSeconds = 0.0
        var coordinatorCPUSeconds = 0.0
        var postgresCPUSeconds = 0.0
        var smallBatchMilliseconds: [Double] = []
        var smallBatchUnderLoadMilliseconds: [Double] = []
        /// From the last commit until the batch is completed and sealed.
        var sealSeconds = 0.0
        var verifySeconds = 0.0
        /// From the first chunk until the batch's facets are in the record lists.
        var listedSeconds = 0.0
        /// WAL from before the first chunk until the batch is listed.
        var walBytes: Int64 = 0
        var fullPageImages: Int64 = 0
        /// The `oversight` schema's tables (with indexes and TOAST) when it is listed.
        var tableBytes: [(table: String, bytes: Int64)] = []
    }

    func run() throws -> Result {
        let input = try inputFile()
        let workerPort = try LocalCluster.freePort(), clientPort = try LocalCluster.freePort()
        var children: [ChildProcess] = []
        defer { DemoCommand.stop(children) }
        // This run's logs only: the processes append, and `waitForWorkers` reads the coordinator's
        // log for "worker ready" (an earlier run's lines let the clock start before the workers
        // were there: 0.3 s of every run after the first).
        for name in ["coordinator.log"] + (1...workers).map({ "worker-\($0).log" }) {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
        children.append(try DemoCommand.spawn(["coordinator", "--database", conninfo,
                                               "--worker-endpoint", "tcp://127.0.0.1:\(workerPort)",
                                               "--client-endpoint", "tcp://127.0.0.1:\(clientPort)"],
                                              log: directory + "/coordinator.log"))
        for n in 1...workers {
            children.append(try DemoCommand.spawn(["worker", "--coordinator", "tcp://127.0.0.1:\(workerPort)",
                                                   "--database", conninfo, "--name", "bench-\(n)"],
                                                  log: directory + "/worker-\(n).log"))
        }
        let client = try CoordinatorClient(endpoint: "tcp://127.0.0.1:\(clientPort)", curve: nil, timeoutSeconds: 60)
        // Let every worker announce itself before the clock starts.
        try waitForWorkers(client)

        let store = try AuditStore(conninfo: conninfo, applicationName: "oversight-bench")
        let walBefore = try store.walPosition()
        let postgresBefore = ProcessStats.cpuSeconds(ofCommandsStartingWith: "postgres")
        var acknowledged: [UInt64: Double] = [:]
        let batch = BatchID()
        var submission = Submission(file: try BatchFile(path: input, format: .jsonl), client: client, batchID: batch,
                                    name: "bench \(records)", packs: CriteriaPack.builtIn.map { .builtIn($0.id) })
        submission.onAcknowledged = { acknowledged[$0] = Date().timeIntervalSince1970 }
        let started = Date()
        let outcome = try submission.send(showProgress: showProgress)
        guard outcome.accepted == Int64(records) else {
            throw CommandFailure("the bench batch had \(outcome.rejected) rejected records; see \(directory)")
        }
        // The clock stops when the coordinator has heard of the last commit (it counts a job done
        // only after the worker's COMMIT); sealing the batch comes after and is timed apart.
        // While it runs, a 10-record batch is submitted at a quarter, half and three quarters
        // of the way: small batches must not wait behind a big one.
        var result = Result()
        var lastCommitted: Date?
        var display = ProgressDisplay(label: "assessing")
        var underLoadAt = [1, 2, 3].map { Int64(records) * $0 / 4 }
        while true {
            guard case .status(let p) = try client.request(.status(batchID: batch), timeoutSeconds: 30) else {
                throw CommandFailure("unexpected answer to STATUS from the bench coordinator")
            }
            if lastCommitted == nil, p.done + p.failed >= Int64(records) { lastCommitted = Date() }
            if showProgress { display.update(done: p.done + p.failed, total: Int64(records), detail: "") }
            if p.state == .completed || p.state == .cancelled {
                if showProgress { display.finish() }
                guard p.state == .completed, p.done == Int64(records) else {
                    throw CommandFailure("the bench batch ended \(p.state) with \(p.done) of \(records) assessed; see the logs in \(directory)")
                }
                break
            }
            if let next = underLoadAt.first, p.done >= next, p.state == .running {
                underLoadAt.removeFirst()
                result.smallBatchUnderLoadMilliseconds.append(try smallBatch(client, store))
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        let sealed = Date()
        result.seconds = (lastCommitted ?? sealed).timeIntervalSince(started)
        result.sealedSeconds = sealed.timeIntervalSince(started)
        result.sealSeconds = sealed.timeIntervalSince(lastCommitted ?? sealed)
        result.assessmentsPerSecond = Double(records) / result.seconds

        // Resources, read while everything still runs.
        let stats = children.map { ProcessStats(pid: $0.pid) }
        result.coordinatorPeakRSSMiB = stats[0]?.peakRSSMiB ?? 0
        result.workerPeakRSSMiB = stats.dropFirst().map { $0?.peakRSSMiB ?? 0 }
        result.oversightCPUSeconds = stats.reduce(0) { $0 + ($1?.cpuSeconds ?? 0) }
        result.coordinatorCPUSeconds = stats[0]?.cpuSeconds ?? 0
        let postgresAfter = ProcessStats.cpuSeconds(ofCommandsStartingWith: "postgres")
        result.postgresCPUSeconds = postgresAfter.reduce(0) { $0 + $1.value - (postgresBefore[$1.key] ?? 0) }

        // `oversight audit verify`, as a user runs it once the batch is sealed.
        let verifyStarted = ContinuousClock.now
        guard let report = try store.verify(batchID: batch, trustedKey: nil), report.problems.isEmpty else {
            throw CommandFailure("the bench batch did not verify; see the logs in \(directory)")
        }
        result.verifySeconds = (ContinuousClock.now - verifyStarted).seconds

        // Everything the batch writes, to the end: its summary and the move of its facets into
        // the indexed record lists come after the seal.
        let listDeadline = ContinuousClock.now + .seconds(max(600, records / 2_000))
        while try !store.batchListed(batchID: batch) {
            guard ContinuousClock.now < listDeadline else {
                throw CommandFailure("the bench batch was not summarised and listed in time; see the logs in \(directory)")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        result.listedSeconds = Date().timeIntervalSince(started)
        let walAfter = try store.walPosition()
        result.walBytes = walAfter.bytes - walBefore.bytes
        result.fullPageImages = walAfter.fullPageImages - walBefore.fullPageImages
        result.tableBytes = try store.oversightTableBytes()

        let times = (1...UInt64(max(acknowledged.count, 1))).map { acknowledged[$0] ?? 0 }
        (result.p50Milliseconds, result.p99Milliseconds) = try store.commitLatencies(batchID: batch, acknowledgedAt: times,
                                                                                      chunkSize: submission.chunkSize)
        result.smallBatchMilliseconds = try (0..<5).map { _ in try smallBatch(client, store) }
        return result
    }

    /// The generated records as JSON Lines, kept between runs with the same size and seed.
    func inputFile() throws -> String {
        let path = directory + "/records-\(records)-\(seed).jsonl"
        if FileManager.default.fileExists(atPath: path) { return path }
        let partial = path + ".partial"
        _ = FileManager.default.createFile(atPath: partial, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        for record in SyntheticDeployments(count: records, seed: seed) {
            record.writeCanonical(into: &buffer)
            buffer.append(0x0A)
            if buffer.count >= 1 << 20 { handle.write(Data(buffer)); buffer.removeAll(keepingCapacity: true) }
        }
        handle.write(Data(buffer))
        try handle.close()
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        return path
    }

    private func waitForWorkers(_ client: CoordinatorClient) throws {
        // A status request answers once the coordinator is up; workers connect within their first
        // heartbeat, and their log says when they were accepted.
        _ = try? client.request(.status(batchID: BatchID()), timeoutSeconds: 30)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let log = (try? String(contentsOfFile: directory + "/coordinator.log", encoding: .utf8)) ?? ""
            if log.components(separatedBy: "worker ready").count - 1 >= workers { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw CommandFailure("the bench workers did not connect within 30 s; see the logs in \(directory)")
    }

    /// Milliseconds from opening a 10-record batch until its 10 results are in PostgreSQL.
    private func smallBatch(_ client: CoordinatorClient, _ store: AuditStore) throws -> Double {
        let path = directory + "/small.jsonl"
        if !FileManager.default.fileExists(atPath: path) {
            let text = SyntheticDeployments(count: 10, seed: seed &+ 1).map { $0.canonicalString + "\n" }.joined()
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let batch = BatchID()
        var submission = Submission(file: try BatchFile(path: path, format: .jsonl), client: client, batchID: batch,
                                    name: "bench small", packs: CriteriaPack.builtIn.map { .builtIn($0.id) })
        let started = ContinuousClock.now
        _ = try submission.send(showProgress: false)
        while true {
            let count = try store.assessedCount(batchID: batch)
            if count == 10 { return (ContinuousClock.now - started).seconds * 1000 }
            if (ContinuousClock.now - started).seconds > 30 { throw CommandFailure("a 10-record batch took over 30 s; see the logs in \(directory)") }
            usleep(1_000)
        }
    }
}
