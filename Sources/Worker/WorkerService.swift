public import Logging
public import ZeroMQ
import Identifiers
import AuditStore
import Assessment
import Wire
import Foundation
import Observability
import Metrics

/// How a worker runs.
public struct WorkerConfiguration: Sendable {
    public var coordinatorEndpoint: String
    public var conninfo: String
    public var name: String
    /// Jobs this worker may hold at once (sent to the coordinator in READY).
    public var credit: UInt32 = 1024
    public var heartbeatIntervalMilliseconds: Int64 = 1_000
    public var liveness: Int64 = 3
    /// CURVE: this worker's key pair and the coordinator's public key. Nil: plain TCP.
    public var curve: CurveClient?

    public init(coordinatorEndpoint: String, conninfo: String, name: String) {
        self.coordinatorEndpoint = coordinatorEndpoint
        self.conninfo = conninfo
        self.name = name
    }
}

/// A worker: receives bundles, scores them, writes the results in one transaction per bundle,
/// and reports DONE only after COMMIT.
///
/// `run()`'s thread owns the DEALER socket; a scoring thread scores bundles (reading criteria
/// sets over its own connection); a writing thread owns the connection that writes results, so
/// that the next bundle is scored while the last one commits.
public final class WorkerService: @unchecked Sendable {
    let configuration: WorkerConfiguration
    let logger: Logger
    private let wakeup = Wakeup()
    private let bundles = Mailbox<JobBundle>()
    private let outbox: Mailbox<WorkerMessage>
    private let stopping = Mailbox<Bool>()
    private let health = WorkerHealth()
    private let scoringFinished = Mailbox<Bool>()
    /// Scored bundles waiting to be written, in order.
    private let scored = Mailbox<ScoredBundle>()

    struct ScoredBundle: Sendable {
        let bundle: JobBundle
        let criteriaSHA256: [UInt8]
        let rows: [AssessmentRow]
        let failures: [(seq: Int64, attempt: Int, reason: String)]
    }
    /// Seconds a stopping worker may spend finishing the jobs it holds.
    public var drainDeadlineSeconds: Int64 = 20

    public init(configuration: WorkerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        outbox = Mailbox(wakeup: wakeup)
    }

    /// `/healthz`: the loop that owns the socket ran within 10 s.
    public var isAlive: Bool { health.secondsSince(\.loop) < 10 }

    /// `/readyz`: nil when it hears from a coordinator and PostgreSQL takes its writes.
    public var notReady: String? {
        if !isAlive { return "the worker's socket loop has not run for \(Int(health.secondsSince(\.loop))) s" }
        let silence = Double(configuration.heartbeatIntervalMilliseconds * configuration.liveness) / 1000
        if health.secondsSince(\.coordinator) > silence { return "no coordinator has answered for \(Int(health.secondsSince(\.coordinator))) s" }
        if let failing = health.databaseFailingFor { return "PostgreSQL has refused or not answered this worker's writes for \(Int(failing)) s" }
        return nil
    }

    public func stop() {
        SystemdNotify.stopping(status: "stopping: finishing the jobs this worker holds")
        stopping.post(true)
        wakeup.signal()
    }

    public func run() throws {
        // Fail fast on a bad database setting, before taking any job.
        _ = try AuditStore(conninfo: configuration.conninfo, applicationName: "oversight-worker")
        let logger = self.logger
        let report: @Sendable (String) -> Void = { logger.critical("\($0)") }
        // They end only once the job mailboxes are closed (the worker stops); otherwise the
        // process goes down rather than heartbeating with nobody scoring.
        _ = OwnerThread("oversight-scoring", mayEnd: { [bundles] in bundles.isClosed }, report: report) { [self] in self.scoreLoop() }
        _ = OwnerThread("oversight-writing", mayEnd: { [bundles] in bundles.isClosed }, report: report) { [self] in self.writeLoop() }

        let context = ZMQContext()
        defer { context.shutdown() }
        // Metrics are made here, once `--metrics` has set the backend up (a no-op without it).
        let reconnects = Counter(label: "oversight_worker_reconnects_total")
        let unacknowledged = Gauge(label: "oversight_worker_unacknowledged_results")
        var socket = try connect(context)
        var poller = Self.poller(socket, wakeup)
        SystemdNotify.ready(status: "connecting to \(configuration.coordinatorEndpoint)")
        // With CURVE, a refused key must be said, not look like a coordinator that is down.
        var monitor = configuration.curve == nil ? nil : try HandshakeMonitor(socket, context: context)
        var refusalsLogged = 0
        let clock = ContinuousClock()
        let start = clock.now
        func now() -> Int64 { let d = clock.now - start; return d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000 }
        var lastReceived = now()
        var lastSent = now()
        var backoff: Int64 = 250
        // Messages not yet accepted by a live connection (IMMEDIATE is on): sent in order, never dropped.
        var unsent: [WorkerMessage] = [.ready(name: configuration.name, credit: configuration.credit)]
        // Jobs received and not yet reported in a DONE that was sent, by batch: a READY names
        // them, so that a coordinator that restarted (or this worker's new connection) leaves
        // them with this worker instead of sending them elsewhere and charging an attempt.
        var held: [BatchID: [Int64: UInt16]] = [:]
        func flush() {
            while var message = unsent.first {
                if case .ready = message {
                    // Said as it stands when it leaves: DONEs queued before it are sent first.
                    message = .ready(name: configuration.name, credit: configuration.credit, held: held.map { batch, jobs in
                        HeldJobs(batchID: batch, jobs: jobs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
                    }.sorted { $0.batchID < $1.batchID })
                }
                do { try socket.send(message.encode(), dontWait: true) } catch { return }
                unsent.removeFirst()
                lastSent = now()
                if case .done(let batch, let committed, let failed) = message, var jobs = held[batch] {
                    for seq in committed { jobs[seq] = nil }
                    for failure in failed { jobs[failure.seq] = nil }
                    held[batch] = jobs.isEmpty ? nil : jobs
                }
            }
        }

        var draining = false
        var drainDeadline: Int64 = 0
        while true {
            health.beat(\.loop)
            unacknowledged.record(held.values.reduce(0) { $0 + $1.count })
            if !draining && stopping.count > 0 {
                // Graceful stop: take no new job, finish and acknowledge the ones held.
                draining = true
                drainDeadline = now() + drainDeadlineSeconds * 1000
                bundles.close()
                logger.info("stopping: finishing the jobs this worker holds", metadata: ["bundles": "\(bundles.count)"])
            }
            if draining && (scoringFinished.count > 0 || now() > drainDeadline) {
                unsent += outbox.drain()
                flush()
                break
            }
            let ready = try poller.poll(timeout: Int(draining ? 50 : configuration.heartbeatIntervalMilliseconds / 2))
            if let failure = monitor?.failures().first, refusalsLogged < 3 {
                refusalsLogged += 1
                switch failure {
                case .refused:
                    logger.error("the coordinator refused this worker's key: add its public .key file to the coordinator's --worker-keys directory (then SIGHUP the coordinator)")
                case .failed:
                    logger.error("the secure handshake with the coordinator failed: is --coordinator-key this coordinator's key, and does it run with --key?")
                }
            }
            if ready[1] {
                wakeup.drain()
                unsent += outbox.drain()
            }
            flush()
            if ready[0] {
                while let frames = try socket.receive(dontWait: true) {
                    lastReceived = now()
                    health.beat(\.coordinator)
                    backoff = 250
                    do {
                        switch try CoordinatorMessage.decode(frames[...]) {
                        case .jobs(let bundle):
                            // While stopping, new jobs are not taken: DISCONNECT returns them.
                            if !draining {
                                for job in bundle.jobs { held[bundle.batchID, default: [:]][job.seq] = job.attempt }
                                bundles.post(bundle)
                            }
                        case .heartbeat: break
                        case .disconnect:
                            logger.info("coordinator asked this worker to announce itself again")
                            unsent.append(.ready(name: configuration.name, credit: configuration.credit))
                        }
                    } catch {
                        logger.warning("dropped a bad message from the coordinator", metadata: ["error": "\(error)"])
                    }
                }
            }
            let t = now()
            if t - lastReceived > configuration.heartbeatIntervalMilliseconds * configuration.liveness {
                // Paranoid Pirate: the coordinator is silent; reconnect and announce again.
                logger.warning("coordinator silent, reconnecting", metadata: ["backoff_ms": "\(backoff)"])
                reconnects.increment()
                monitor?.close()
                socket.close()
                Thread.sleep(forTimeInterval: Double(backoff) / 1000)
                backoff = min(backoff * 2, 8_000)
                socket = try connect(context)
                poller = Self.poller(socket, wakeup)
                monitor = configuration.curve == nil ? nil : try HandshakeMonitor(socket, context: context)
                unsent.removeAll { if case .ready = $0 { return true } else { return false } }
                unsent.insert(.ready(name: configuration.name, credit: configuration.credit), at: 0)
                lastReceived = now()
                lastSent = now()
            } else if t - lastSent >= configuration.heartbeatIntervalMilliseconds && unsent.isEmpty {
                try? socket.send(WorkerMessage.heartbeat.encode(), dontWait: true)
                lastSent = t
            }
        }
        bundles.close()
        try? socket.send(WorkerMessage.disconnect.encode(), dontWait: true)
        try? socket.setLinger(milliseconds: 500)
        monitor?.close()
        socket.close()
        logger.info("worker stopped")
    }

    private static func poller(_ socket: ZMQSocket, _ wakeup: Wakeup) -> ZMQPoller {
        var poller = ZMQPoller()
        poller.add(socket)
        poller.add(fileDescriptor: wakeup.fileDescriptor)
        return poller
    }

    private func connect(_ context: ZMQContext) throws(ZMQError) -> ZMQSocket {
        let socket = try ZMQSocket(context, .dealer)
        if let curve = configuration.curve { try socket.makeCurveClient(curve.keys, serverKey: curve.serverKey) }
        try socket.setMaximumMessageSize(Int64(Envelope.maximumMessageSize))
        try socket.setReconnectInterval(milliseconds: 100, maximum: 2_000)
        // Each connection gets a fresh routing id: jobs the coordinator sent into a connection
        // this worker closed are then seen as abandoned (unroutable or silent), never stranded.
        try socket.setImmediate(true)
        // Several endpoints (a hot standby): only the active coordinator binds, so only it answers.
        for endpoint in configuration.coordinatorEndpoint.split(separator: ",") {
            try socket.connect(String(endpoint).trimmingCharacters(in: .whitespaces))
        }
        logger.info("worker connecting", metadata: ["coordinator": "\(configuration.coordinatorEndpoint)", "credit": "\(configuration.credit)",
                                                   "security": "\(configuration.curve == nil ? "none (plain TCP)" : "CURVE")"])
        return socket
    }

    // MARK: Scoring and writing threads

    private func logIdle(_ thread: String) {
        logger.log(level: IdlePeriod.injected == nil ? .trace : .notice, "idle, still waiting for work", metadata: ["thread": "\(thread)"])
    }

    private func scoreLoop() {
        defer { scored.close() }
        let bundlesScored = Counter(label: "oversight_worker_bundles_total")
        let recordsScored = Counter(label: "oversight_worker_records_scored_total")
        let scoring = Metrics.Timer(label: "oversight_worker_scoring_seconds")
        var store: AuditStore?
        var sets: [[UInt8]: CriteriaSet] = [:]
        // The day each batch is assessed as of, fixed when it was opened.
        var dates: [BatchID: CalendarDate] = [:]
        // OVERSIGHT_FAULT_CRASH_ON_ID: fault injection for the test suite only (see BundleScorer).
        let scorer = BundleScorer(crashOnRecordID: ProcessInfo.processInfo.environment["OVERSIGHT_FAULT_CRASH_ON_ID"])
        bundles.forEach(idleSeconds: IdlePeriod.seconds, idle: { logIdle("scoring") }, choosing: { Self.fairest($0.map { ($0.batchID, $0.jobs.count) }) }) { bundle in
            var delay = 0.1
            while true {
                do {
                    let criteria: CriteriaSet
                    if let cached = sets[bundle.criteriaSHA256] { criteria = cached } else {
                        let current = try store ?? AuditStore(conninfo: configuration.conninfo, applicationName: "oversight-worker")
                        store = current
                        guard let loaded = try current.criteriaSet(sha256: bundle.criteriaSHA256) else {
                            throw StoreError(message: "criteria set \(bundle.criteriaSHA256.hexString) is not in the database")
                        }
                        sets[bundle.criteriaSHA256] = loaded
                        criteria = loaded
                    }
                    let asOf: CalendarDate
                    if let cached = dates[bundle.batchID] { asOf = cached } else {
                        let current = try store ?? AuditStore(conninfo: configuration.conninfo, applicationName: "oversight-worker")
                        store = current
                        guard let loaded = try current.assessmentDate(batchID: bundle.batchID) else {
                            throw StoreError(message: "batch \(bundle.batchID) is not in the database")
                        }
                        dates[bundle.batchID] = loaded
                        asOf = loaded
                    }
                    let started = ContinuousClock.now
                    let (rows, failures) = scorer.score(bundle, with: criteria, asOf: asOf)
                    scoring.record(duration: ContinuousClock.now - started)
                    bundlesScored.increment()
                    recordsScored.increment(by: bundle.jobs.count)
                    scored.post(ScoredBundle(bundle: bundle, criteriaSHA256: criteria.sha256, rows: rows, failures: failures))
                    break
                } catch where AuditStore.isTransient(error) {
                    store = nil
                    logger.warning("could not read the criteria set or the batch's date, retrying", metadata: ["error": "\(error)", "retry_in_s": "\(delay)"])
                    Thread.sleep(forTimeInterval: delay * Double.random(in: 0.5...1.5))
                    delay = min(delay * 2, 10)
                    if bundles.isClosed && bundles.count == 0 { return }
                } catch {
                    // Not the database being away: retrying cannot help. Report the jobs as
                    // failed; the coordinator retries them up to its limit, then gives up.
                    logger.error("cannot score this bundle", metadata: ["batch": "\(bundle.batchID)", "error": "\(error)"])
                    let reason = "\(error)"
                    scored.post(ScoredBundle(bundle: bundle, criteriaSHA256: bundle.criteriaSHA256, rows: [],
                                             failures: bundle.jobs.map { (seq: $0.seq, attempt: Int($0.attempt) + 1, reason: reason) }))
                    break
                }
            }
        }
    }

    /// Which waiting bundle to score or write next (given oldest first as batch and job count):
    /// the oldest of the batch with the fewest jobs waiting here. A 10-record batch dealt to a
    /// worker that holds a big batch's bundles goes first instead of behind a thousand jobs.
    /// The coordinator deals bundles round-robin between batches and its credit bounds what
    /// waits here, so a bundle passed over is taken once the others are.
    static func fairest(_ waiting: [(batch: BatchID, jobs: Int)]) -> Int {
        var jobs: [BatchID: Int] = [:]
        for bundle in waiting { jobs[bundle.batch, default: 0] += bundle.jobs }
        var best = 0
        for (place, bundle) in waiting.enumerated() where jobs[bundle.batch]! < jobs[waiting[best].batch]! { best = place }
        return best
    }

    private func writeLoop() {
        defer { scoringFinished.post(true); wakeup.signal() }
        var store: AuditStore?
        let commit = Metrics.Timer(label: "oversight_worker_commit_seconds")
        scored.forEach(idleSeconds: IdlePeriod.seconds, idle: { logIdle("writing") },
                       choosing: { Self.fairest($0.map { ($0.bundle.batchID, $0.bundle.jobs.count) }) }) { work in
            var delay = 0.1
            while true {
                do {
                    let current = try store ?? AuditStore(conninfo: configuration.conninfo, applicationName: "oversight-worker")
                    store = current
                    // Failures are reported in DONE; the coordinator writes them to job_failures.
                    let started = ContinuousClock.now
                    let written = try current.writeAssessments(batchID: work.bundle.batchID, criteriaSHA256: work.criteriaSHA256,
                                                               worker: configuration.name, rows: work.rows)
                    commit.record(duration: ContinuousClock.now - started)
                    health.databaseAnswered()
                    if written < work.rows.count {
                        // Stored already: a job sent again after a coordinator or worker was lost,
                        // or this bundle's own commit retried after its answer was lost. The
                        // stored result stands (it is what the seal covers).
                        logger.info("results already stored kept", metadata: ["batch": "\(work.bundle.batchID)",
                                                                               "already_stored": "\(work.rows.count - written)"])
                    }
                    outbox.post(.done(batchID: work.bundle.batchID, committed: work.rows.map(\.seq),
                                      failed: work.failures.map { JobFailure(seq: $0.seq, reason: $0.reason) }))
                    break
                } catch {
                    guard AuditStore.isTransient(error) else {
                        logger.error("cannot store this bundle's results", metadata: ["batch": "\(work.bundle.batchID)", "error": "\(error)"])
                        let reason = "\(error)"
                        outbox.post(.done(batchID: work.bundle.batchID, committed: [],
                                          failed: work.bundle.jobs.map { JobFailure(seq: $0.seq, reason: reason) }))
                        break
                    }
                    // Keep the results; they are acknowledged only after a commit.
                    store = nil
                    health.databaseFailed()
                    logger.warning("could not store results, retrying", metadata: ["error": "\(error)", "retry_in_s": "\(delay)"])
                    Thread.sleep(forTimeInterval: delay * Double.random(in: 0.5...1.5))
                    delay = min(delay * 2, 10)
                    if bundles.isClosed && scored.isClosed && scored.count == 0 { return }
                }
            }
        }
    }
}

/// When a worker's threads last did what `/healthz` and `/readyz` ask about: timestamps only.
final class WorkerHealth: @unchecked Sendable {
    struct Marks { var loop = ContinuousClock.now, coordinator = ContinuousClock.now }
    private let lock = NSLock()
    private var marks = Marks()
    private var failingSince: ContinuousClock.Instant?

    func beat(_ mark: WritableKeyPath<Marks, ContinuousClock.Instant>) { lock.withLock { marks[keyPath: mark] = ContinuousClock.now } }
    func secondsSince(_ mark: KeyPath<Marks, ContinuousClock.Instant>) -> Double {
        Self.seconds(ContinuousClock.now - lock.withLock { marks[keyPath: mark] })
    }
    func databaseAnswered() { lock.withLock { failingSince = nil } }
    func databaseFailed() { lock.withLock { if failingSince == nil { failingSince = ContinuousClock.now } } }
    var databaseFailingFor: Double? { lock.withLock { failingSince }.map { Self.seconds(ContinuousClock.now - $0) } }
    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
}
