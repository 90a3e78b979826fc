import Identifiers
import Wire

/// Identity of a job across batches.
struct JobKey: Hashable, Sendable {
    let batch: BatchID
    let seq: Int64
}

/// The coordinator's dispatch decisions as a pure state machine: events in, actions out.
/// It never touches a socket or a database; `CoordinatorService` carries out the actions.
struct Dispatcher {
    struct Configuration: Sendable {
        /// Most jobs in one JOBS message.
        var bundleSize = 256
        /// Most jobs of all batches held in memory, waiting to be sent.
        var pendingWindow = 10_000
        /// Most jobs read back from the store at once.
        var loadPage = 2_500
        /// Interval between heartbeats, in milliseconds.
        var heartbeatInterval: Int64 = 1_000
        /// A peer silent for `liveness` intervals is dead.
        var liveness: Int64 = 3
        /// Attempts before a job is given up as failed.
        var maxAttempts = 3
        /// Most jobs one worker may hold, whatever credit it claims: a greedy worker that
        /// vanishes costs at most this many jobs an attempt.
        var maxCredit = 1_024
        /// A worker holding jobs that reports no DONE for this long (milliseconds) has stalled,
        /// however well it heartbeats: its leases expire and go to other workers.
        var leaseTimeout: Int64 = 600_000
    }

    enum Action: Equatable {
        case send(worker: [UInt8], CoordinatorMessage)
        /// Ask the store for up to `limit` unassessed jobs after `afterSeq`.
        case load(batch: BatchID, afterSeq: Int64, limit: Int)
        case markCompleted(BatchID)
        /// A worker died holding the job: keep the attempt in the job's history.
        case recordFailure(batch: BatchID, seq: Int64, attempt: Int, worker: String, reason: String)
        /// The job failed its last allowed attempt: give it up.
        case deadLetter(batch: BatchID, seq: Int64, attempts: Int, reason: String)
        /// Nothing is pending or leased, yet the counts fall short: count again in the store.
        case reconcile(BatchID)
        /// A DONE named jobs that were not leased to its sender: count only those the store
        /// holds an assessment for (`worker` names the sender, for the log).
        case verifyDone(batch: BatchID, seqs: [Int64], worker: String)
        /// A peer broke the protocol: count it, by kind.
        case violation(kind: String, count: Int)
        /// Jobs lost with a worker that held others were set aside to be tested in isolation,
        /// without an attempt: count them.
        case setAside(count: Int)
        /// A DONE reported these of the sender's own leases committed, each this many
        /// milliseconds after it was leased (for the job and bundle duration histograms).
        case committedAfter(milliseconds: [Int64])
    }

    struct Worker {
        let id: [UInt8]
        var name: String
        var credit: Int
        /// Jobs it holds (the leases naming it): a count, so that a job costs no hashing here.
        var inFlight = 0
        /// Jobs held that failed before: at most one at a time (see `dispatch`).
        var retriedHeld: Set<JobKey> = []
        var lastReceived: Int64
        var lastSent: Int64
        /// When it last made progress (a DONE), or was given work while it held none: its leases
        /// expire `leaseTimeout` after this.
        var progressAt: Int64 = 0
        /// It holds a group of suspects and nothing else (see `isolate`).
        var isolating = false
        /// A connection from before the coordinator held (`resumed`): ended, kept only so that
        /// the worker, announcing itself on a new one, takes its leases back. Sent nothing.
        var absent = false
    }

    struct Batch {
        let id: BatchID
        let criteriaSHA256: [UInt8]
        var accepted: Int64
        var rejected: Int64
        var done: Int64
        var failed: Int64 = 0
        var intakeClosed: Bool
        var completed = false
        var cancelled = false
        /// The store has recorded the completion: only then do clients hear "completed".
        var completionRecorded = false
        /// Jobs in memory, ready to send, with their attempt count so far.
        var pending: [(seq: Int64, attempt: UInt16, record: [UInt8])] = []
        var pendingHead = 0
        /// Highest seq whose job is in memory, leased, or known assessed.
        var loadedThrough: Int64 = 0
        /// The store may hold unassessed jobs after `loadedThrough`.
        var storeHasMore: Bool
        var loadInFlight = false
        /// The load in flight was asked before the batch was read again from the start (a
        /// retry, a reconciliation, a refused seal): its answer is dropped, so that no job is
        /// held twice.
        var staleLoad = false
        var reconcileInFlight = false
        /// Reconciliations since the last DONE: bounded, so a batch whose counts cannot be
        /// explained waits for news instead of querying in a loop.
        var reconcileRounds = 0
        /// Seqs reported done while they were waiting in `pending` (after a requeue).
        var doneWhilePending: Set<Int64> = []
        /// Seqs a worker re-announced before they were read back from the store: leased to it
        /// when they are, instead of being sent to anyone.
        var announced: [Int64: [UInt8]] = [:]
        /// Jobs at workers, by seq; kept per batch so that a job's key is its seq alone.
        var leases: [Int64: Lease] = [:]
        /// No lease has a higher seq: jobs read after it need no lookup in `leases`.
        var highestLeased: Int64 = 0
        /// Attempts so far of jobs that failed before, until they are done or given up.
        var attempts: [Int64: UInt16] = [:]
        /// Jobs a seal found missing though reported done, and how often: a DONE clears a job's
        /// attempts, so a worker that keeps claiming without writing is counted here.
        var missingAtSeal: [Int64: UInt16] = [:]

        /// Jobs whose scoring failed (the worker said so), waiting to be re-sent one at a time.
        var retries: [(seq: Int64, attempt: UInt16, record: [UInt8])] = []
        /// Jobs lost with a worker that held others besides: nothing says which of them, if any,
        /// killed it, so none is charged an attempt. They are tested in isolation, in groups of
        /// at most `group` jobs sent to a worker that holds nothing else; a group lost there is
        /// split in halves, and a job lost alone is charged (see `workerLost`).
        var suspects: [Suspect] = []

        var pendingCount: Int { pending.count - pendingHead + retries.count + suspects.count }

        /// Everything not leased, retried or suspected is read back from the store from the
        /// start: what waited in memory is dropped (the store holds it, unassessed), and a load
        /// already asked for is answered too early to count.
        mutating func readAgain() {
            pending = []
            pendingHead = 0
            doneWhilePending = []
            storeHasMore = true
            loadedThrough = 0
            if loadInFlight { staleLoad = true }
        }
        /// Nothing waits to be sent (jobs done while they waited do not count).
        var nothingWaiting: Bool {
            retries.isEmpty && suspects.isEmpty && pending[pendingHead...].allSatisfy { doneWhilePending.contains($0.seq) }
        }

        var progress: BatchProgress {
            BatchProgress(batchID: id, state: cancelled ? .cancelled : completionRecorded ? .completed : (intakeClosed ? .running : .receiving),
                          accepted: accepted, rejected: rejected, done: done, failed: failed)
        }
    }

    struct Lease {
        var worker: [UInt8]
        var attempt: UInt16
        var record: [UInt8]
        /// When it was leased (sent, or taken back by a READY): what a job's duration counts from.
        var since: Int64 = 0
    }

    /// A job lost with its worker, waiting to be tested in isolation.
    struct Suspect {
        let seq: Int64
        let attempt: UInt16
        let record: [UInt8]
        /// Most jobs it may travel with (itself included).
        let group: Int
    }

    let configuration: Configuration
    private(set) var workers: [[UInt8]: Worker] = [:]
    private(set) var batches: [BatchID: Batch] = [:]
    private var batchOrder: [BatchID] = []
    private var nextBatchIndex = 0
    /// The worker chosen to test suspects: it is sent nothing else, and a group of suspects
    /// once it holds nothing (see `isolate`).
    private(set) var isolator: [UInt8]?
    /// Jobs counted done since this dispatcher began (each once): `oversight_jobs_total{outcome="committed"}`.
    private(set) var jobsDone: Int64 = 0

    init(configuration: Configuration = .init()) { self.configuration = configuration }

    var leasedCount: Int { batches.values.reduce(0) { $0 + $1.leases.count } }
    var pendingCount: Int { batches.values.reduce(0) { $0 + $1.pendingCount } }

    // MARK: Batches

    /// A batch became known (opened by a client, or found unfinished in the store at start).
    mutating func batchOpened(_ id: BatchID, criteriaSHA256: [UInt8], accepted: Int64, rejected: Int64, done: Int64,
                              failed: Int64 = 0, intakeClosed: Bool) -> [Action] {
        if batches[id] != nil { return [] }
        batches[id] = Batch(id: id, criteriaSHA256: criteriaSHA256, accepted: accepted, rejected: rejected, done: done,
                            failed: failed, intakeClosed: intakeClosed, storeHasMore: accepted > done + failed)
        batchOrder.append(id)
        return refill(id) + checkCompleted(id)
    }

    /// A chunk was committed to `jobs`: its records may go straight to the window.
    mutating func chunkStored(_ id: BatchID, jobs: [(seq: Int64, record: [UInt8])], rejected: Int, now: Int64) -> [Action] {
        guard batches[id] != nil, let first = jobs.first else {
            batches[id]?.rejected += Int64(rejected)
            return []
        }
        let fits = pendingCount + jobs.count <= configuration.pendingWindow
        // Taken out of the dictionary while it changes, so that its window is not copied.
        var batch = batches.removeValue(forKey: id)!
        batch.accepted += Int64(jobs.count)
        batch.rejected += Int64(rejected)
        if !batch.loadInFlight && !batch.storeHasMore && batch.loadedThrough == first.seq - 1 && fits {
            for job in jobs { batch.pending.append((job.seq, 0, job.record)) }
            batch.loadedThrough = jobs.last!.seq
        } else {
            batch.storeHasMore = true
        }
        batches[id] = batch
        return refill(id) + dispatch(now: now)
    }

    mutating func intakeClosed(_ id: BatchID) -> [Action] {
        batches[id]?.intakeClosed = true
        return checkCompleted(id)
    }

    /// The store answered a `load`: unassessed jobs in order, every job through `through` examined;
    /// `exhausted` when the store holds no job after `through`.
    mutating func jobsLoaded(_ id: BatchID, jobs: [(seq: Int64, record: [UInt8])], exhausted: Bool, through: Int64, now: Int64) -> [Action] {
        guard var batch = batches.removeValue(forKey: id) else { return [] }
        batch.loadInFlight = false
        if batch.staleLoad || batch.cancelled {
            batch.staleLoad = false
            batches[id] = batch
            return refill(id) + checkCompleted(id)
        }
        // Jobs waiting to be sent again are in memory already (the store holds them unassessed).
        let queued = batch.retries.isEmpty && batch.suspects.isEmpty ? Set<Int64>()
            : Set(batch.retries.map(\.seq) + batch.suspects.map(\.seq))
        for job in jobs where job.seq > batch.loadedThrough {
            if job.seq <= batch.highestLeased && batch.leases[job.seq] != nil { continue }
            if !queued.isEmpty && queued.contains(job.seq) { continue }
            let attempt = batch.attempts.isEmpty ? 0 : batch.attempts[job.seq] ?? 0
            if !batch.announced.isEmpty, let holder = batch.announced.removeValue(forKey: job.seq), workers[holder] != nil {
                // Its worker holds it already (it said so in READY): it stays that worker's.
                batch.leases[job.seq] = Lease(worker: holder, attempt: attempt, record: job.record, since: now)
                batch.highestLeased = max(batch.highestLeased, job.seq)
                holding(holder, 1, now: now)
                continue
            }
            batch.pending.append((job.seq, attempt, job.record))
        }
        batch.loadedThrough = max(batch.loadedThrough, through)
        if exhausted { batch.storeHasMore = false }
        batches[id] = batch
        return refill(id) + dispatch(now: now) + checkCompleted(id)
    }

    func progress(_ id: BatchID) -> BatchProgress? { batches[id]?.progress }

    /// Dead letters were queued again (`retried` of them): the batch runs again and reads its
    /// unassessed jobs back from the store.
    mutating func retried(_ id: BatchID, count: Int, now: Int64) -> [Action] {
        guard var batch = batches[id], !batch.cancelled else { return [] }
        batch.failed = max(0, batch.failed - Int64(count))
        batch.completed = false
        batch.completionRecorded = false
        batch.readAgain()
        batch.reconcileRounds = 0
        batches[id] = batch
        return refill(id) + dispatch(now: now)
    }

    /// Nothing more of the batch is sent; jobs at workers finish and count.
    mutating func cancelled(_ id: BatchID) {
        guard var batch = batches[id] else { return }
        batch.cancelled = true
        batch.completed = true
        batch.pending = []
        batch.pendingHead = 0
        batch.retries = []
        batch.suspects = []
        batch.storeHasMore = false
        batches[id] = batch
    }

    /// The store committed the batch's completion.
    mutating func completionRecorded(_ id: BatchID) { batches[id]?.completionRecorded = true }

    // MARK: Workers

    mutating func received(from worker: [UInt8], _ message: WorkerMessage, now: Int64) -> [Action] {
        if case .ready(let name, let credit, let held) = message {
            var actions: [Action] = []
            let granted = min(Int(credit), configuration.maxCredit)
            if Int(credit) > configuration.maxCredit { actions.append(.violation(kind: "credit_above_maximum", count: 1)) }
            if workers[worker] != nil {
                // The same worker process announcing itself again (it reconnected): it still
                // holds its jobs and will report them.
                workers[worker]!.name = name
                workers[worker]!.credit = granted
                workers[worker]!.lastReceived = now
            } else {
                workers[worker] = Worker(id: worker, name: name, credit: granted, lastReceived: now, lastSent: now)
            }
            if !held.isEmpty { actions += reclaim(held, by: worker, now: now) }
            return actions + dispatch(now: now)
        }
        guard workers[worker] != nil else {
            // Not registered (e.g. this coordinator restarted): committed results still count;
            // then ask the worker to announce itself again.
            var actions: [Action] = []
            if case .done(let batchID, let committed, let failed) = message {
                actions += completeJobs(batchID, committed, failed, from: nil, now: now)
            }
            if message != .disconnect { actions.append(.send(worker: worker, .disconnect)) }
            return actions + dispatch(now: now)
        }
        workers[worker]!.lastReceived = now
        switch message {
        case .ready: return []
        case .heartbeat: return []
        case .credit(let more):
            let wanted = workers[worker]!.credit + Int(more)
            workers[worker]!.credit = min(wanted, configuration.maxCredit)
            return (wanted > configuration.maxCredit ? [.violation(kind: "credit_above_maximum", count: 1)] : []) + dispatch(now: now)
        case .done(let batchID, let committed, let failed):
            workers[worker]!.progressAt = now
            return completeJobs(batchID, committed, failed, from: worker, now: now) + dispatch(now: now)
        case .disconnect:
            return workerLost(worker, counted: false) + dispatch(now: now)
        }
    }

    /// A DONE counts on the peer's word only for the jobs leased to that peer (and even those
    /// are checked against the store before the batch is sealed). Seqs it was not leased are
    /// counted once the store shows their assessment; failures count only for the peer's own
    /// leases. Everything else is a protocol violation, counted and ignored.
    private mutating func completeJobs(_ batchID: BatchID, _ committed: [Int64], _ failed: [JobFailure], from worker: [UInt8]?, now: Int64) -> [Action] {
        let name = worker.flatMap { workers[$0]?.name } ?? "an unregistered worker"
        // Taken out of the dictionary while it changes (no copy, one lookup per message).
        guard var batch = batches.removeValue(forKey: batchID) else {
            let claims = committed.count + failed.count
            return claims == 0 ? [] : [.violation(kind: "done_for_unknown_batch", count: claims)]
        }
        batch.reconcileRounds = 0
        var actions: [Action] = []
        var unleased: [Int64] = []
        var releasedByReporter = 0
        var durations: [Int64] = []
        let reporterHoldsRetried = worker.map { workers[$0]?.retriedHeld.isEmpty == false } ?? false
        for seq in committed {
            if let worker, let lease = batch.leases[seq], lease.worker == worker {
                batch.leases[seq] = nil
                releasedByReporter += 1
                durations.append(now - lease.since)
                if reporterHoldsRetried { workers[worker]?.retriedHeld.remove(JobKey(batch: batchID, seq: seq)) }
                if !batch.attempts.isEmpty { batch.attempts[seq] = nil }
                batch.done += 1; jobsDone += 1
            } else {
                unleased.append(seq)
            }
        }
        var foreignFailures = 0
        for failure in failed {
            guard let worker, let lease = batch.leases[failure.seq], lease.worker == worker else { foreignFailures += 1; continue }
            batch.leases[failure.seq] = nil
            releasedByReporter += 1
            if reporterHoldsRetried { workers[worker]?.retriedHeld.remove(JobKey(batch: batchID, seq: failure.seq)) }
            // The coordinator is the one writer of job_failures: every failed attempt, whoever scored it.
            actions.append(.recordFailure(batch: batchID, seq: failure.seq, attempt: Int(lease.attempt) + 1, worker: name, reason: failure.reason))
            if Int(lease.attempt) + 1 >= configuration.maxAttempts {
                batch.attempts[failure.seq] = nil
                batch.failed += 1
                actions.append(.deadLetter(batch: batchID, seq: failure.seq, attempts: Int(lease.attempt) + 1, reason: failure.reason))
            } else {
                batch.attempts[failure.seq] = lease.attempt + 1
                batch.retries.append((failure.seq, lease.attempt + 1, lease.record))
            }
        }
        if let worker, releasedByReporter > 0 { workers[worker]?.inFlight -= releasedByReporter }
        batches[batchID] = batch
        if foreignFailures > 0 {
            // From an unregistered worker (this coordinator restarted) that is expected; the job is pending again anyway.
            actions.append(.violation(kind: worker == nil ? "failure_from_unregistered_worker" : "failure_for_job_not_leased", count: foreignFailures))
        }
        if !unleased.isEmpty { actions.append(.verifyDone(batch: batchID, seqs: unleased, worker: name)) }
        if !durations.isEmpty { actions.append(.committedAfter(milliseconds: durations)) }
        actions += refill(batchID) + checkCompleted(batchID)
        return actions
    }

    /// The store's answer to `verifyDone`: of the `claimed` seqs, `present` have an assessment.
    /// Each present job counts once, wherever it is (leased to another worker, waiting to be
    /// sent again, or pending); the rest were never committed and count as violations.
    mutating func doneVerified(_ batchID: BatchID, claimed: Int, present: [Int64], now: Int64) -> [Action] {
        var actions: [Action] = []
        if claimed > present.count { actions.append(.violation(kind: "done_without_assessment", count: claimed - present.count)) }
        guard var batch = batches.removeValue(forKey: batchID) else { return actions }
        for seq in present {
            if let lease = batch.leases.removeValue(forKey: seq) {
                workers[lease.worker]?.inFlight -= 1
                workers[lease.worker]?.retriedHeld.remove(JobKey(batch: batchID, seq: seq))
                if !batch.attempts.isEmpty { batch.attempts[seq] = nil }
                batch.done += 1; jobsDone += 1
            } else if let i = batch.retries.firstIndex(where: { $0.seq == seq }) {
                batch.retries.remove(at: i)
                batch.attempts[seq] = nil
                batch.done += 1; jobsDone += 1
            } else if let i = batch.suspects.firstIndex(where: { $0.seq == seq }) {
                batch.suspects.remove(at: i)
                batch.attempts[seq] = nil
                batch.done += 1; jobsDone += 1
            } else if batch.pending[batch.pendingHead...].contains(where: { $0.seq == seq }),
                      batch.doneWhilePending.insert(seq).inserted {
                batch.done += 1; jobsDone += 1
            }
        }
        batches[batchID] = batch
        return actions + refill(batchID) + checkCompleted(batchID) + dispatch(now: now)
    }

    /// The store found an assessment for a job this machine gave up (its worker was presumed
    /// dead but had committed it): counted done instead of failed.
    mutating func givenUpButAssessed(_ batchID: BatchID, seq: Int64) -> [Action] {
        guard var batch = batches[batchID], batch.failed > 0 else { return [] }
        batch.failed -= 1
        batch.done += 1; jobsDone += 1
        batches[batchID] = batch
        return checkCompleted(batchID)
    }

    /// The seal thread found the batch incomplete: the store holds `assessed` assessments and
    /// `deadLetters` open dead letters, and `missing` jobs have neither, though the batch was
    /// counted done (a DONE that lied, or a retry). The store's counts replace the batch's;
    /// each missing job spends an attempt (a worker that keeps claiming it without writing it
    /// cannot loop forever) and is read back and sent again.
    mutating func sealRefused(_ batchID: BatchID, assessed: Int64, deadLetters: Int64, missing: [Int64], now: Int64) -> [Action] {
        guard var batch = batches[batchID], !batch.cancelled else { return [] }
        var actions: [Action] = []
        batch.completed = false
        batch.completionRecorded = false
        batch.done = assessed
        batch.failed = deadLetters
        batch.reconcileRounds = 0
        batch.readAgain()
        let reason = "reported done, but no assessment was stored"
        for seq in missing where batch.leases[seq] == nil {
            let attempt = max(batch.attempts[seq] ?? 0, batch.missingAtSeal[seq] ?? 0) + 1
            batch.missingAtSeal[seq] = attempt
            actions.append(.recordFailure(batch: batchID, seq: seq, attempt: Int(attempt), worker: "unknown", reason: reason))
            if Int(attempt) >= configuration.maxAttempts {
                batch.attempts[seq] = nil
                batch.failed += 1
                actions.append(.deadLetter(batch: batchID, seq: seq, attempts: Int(attempt), reason: reason))
            } else {
                batch.attempts[seq] = attempt
            }
        }
        batches[batchID] = batch
        return actions + refill(batchID) + checkCompleted(batchID) + dispatch(now: now)
    }

    /// A worker's READY named jobs it holds (it reconnected, or this coordinator restarted or took
    /// over): they stay with it instead of being sent to another worker and costing an attempt
    /// when either is lost. Only what it could hold is believed: a job waiting to be sent, one
    /// not yet read back from the store, or one leased to this worker's earlier connection (the
    /// same name). A job leased to another worker stays there; one this coordinator counts as
    /// done or does not know is ignored (its DONE is checked in the store); at most its credit.
    private mutating func reclaim(_ held: [HeldJobs], by worker: [UInt8], now: Int64) -> [Action] {
        guard let me = workers[worker] else { return [] }
        var room = me.credit - me.inFlight
        var refused = 0
        // Earlier connections this READY named jobs of: the same process, proven (only it can
        // know what they were sent).
        var earlierConnections: Set<[UInt8]> = []
        for group in held {
            guard var batch = batches.removeValue(forKey: group.batchID) else { continue }
            var waiting: [Int64: Int]?
            var suspectIndex: [Int64: Int]?
            var takenSuspects = false
            var taken: Set<Int64> = []
            for job in group.jobs {
                guard room > 0 else { refused += 1; continue }
                if let lease = batch.leases[job.seq] {
                    guard lease.worker != worker, let earlier = workers[lease.worker], earlier.name == me.name else { continue }
                    batch.leases[job.seq]!.worker = worker
                    workers[lease.worker]!.inFlight -= 1
                    earlierConnections.insert(lease.worker)
                    holding(worker, 1, now: now)
                    let key = JobKey(batch: group.batchID, seq: job.seq)
                    if workers[lease.worker]!.retriedHeld.remove(key) != nil { workers[worker]!.retriedHeld.insert(key) }
                    room -= 1
                    continue
                }
                if waiting == nil {
                    var index: [Int64: Int] = [:]
                    for i in batch.pendingHead..<batch.pending.count { index[batch.pending[i].seq] = i }
                    waiting = index
                    if !batch.suspects.isEmpty {
                        suspectIndex = Dictionary(batch.suspects.indices.map { (batch.suspects[$0].seq, $0) }, uniquingKeysWith: { a, _ in a })
                    }
                }
                if let i = waiting![job.seq], !batch.doneWhilePending.contains(job.seq), !taken.contains(job.seq) {
                    let entry = batch.pending[i]
                    batch.leases[job.seq] = Lease(worker: worker, attempt: entry.attempt, record: entry.record, since: now)
                    batch.highestLeased = max(batch.highestLeased, job.seq)
                    taken.insert(job.seq)
                    holding(worker, 1, now: now)
                    if entry.attempt > 0 { workers[worker]!.retriedHeld.insert(JobKey(batch: group.batchID, seq: job.seq)) }
                    room -= 1
                } else if let i = suspectIndex?[job.seq], !taken.contains(job.seq) {
                    // Set aside when an earlier connection was declared dead; this process has it.
                    let suspect = batch.suspects[i]
                    batch.leases[job.seq] = Lease(worker: worker, attempt: suspect.attempt, record: suspect.record, since: now)
                    batch.highestLeased = max(batch.highestLeased, job.seq)
                    taken.insert(job.seq)
                    takenSuspects = true
                    holding(worker, 1, now: now)
                    room -= 1
                } else if job.seq > batch.loadedThrough && batch.storeHasMore {
                    batch.announced[job.seq] = worker
                    room -= 1
                }
            }
            if !taken.isEmpty {
                // Out of the queue, so that it is sent to nobody (one pass, whatever how many).
                batch.pending = batch.pending[batch.pendingHead...].filter { !taken.contains($0.seq) }
                batch.pendingHead = 0
                if takenSuspects { batch.suspects.removeAll { taken.contains($0.seq) } }
            }
            batches[group.batchID] = batch
        }
        var actions: [Action] = refused > 0 ? [.violation(kind: "held_beyond_credit", count: refused)] : []
        // What those connections still hold never reached the process (it would have named it):
        // back to the queue, first in line, without an attempt; the old connections are done.
        for earlier in earlierConnections { actions += workerLost(earlier, counted: false) }
        return actions
    }

    /// The worker is gone, and every job it held goes back.
    ///
    /// A worker that said DISCONNECT, or that lives on in a new connection (`counted` false),
    /// did not attempt what it gave back: first in line, as it was. A worker that died or
    /// vanished may have been killed by one of its jobs or by anything else (a kill, a crash,
    /// a lost machine or network). A job it held alone is charged an attempt: recorded, and
    /// given up after the last. Jobs it held with others are charged nothing and set aside
    /// as suspects, each to travel next in a group of at most half as many, to a worker that
    /// holds nothing else (see `isolate`): a record that kills every worker scoring it is
    /// alone after log2(credit) losses and then spends its attempts, while a healthy job is
    /// never given up for its worker's bad luck. `undelivered` jobs (their JOBS could not be
    /// sent) never reached it: they go back as if it had said DISCONNECT.
    mutating func workerLost(_ id: [UInt8], counted: Bool = true, undelivered: Set<JobKey> = []) -> [Action] {
        guard let worker = workers.removeValue(forKey: id) else { return [] }
        if isolator == id { isolator = nil }
        var actions: [Action] = []
        let reason = "worker \(worker.name) was lost while holding the job"
        var held: [(key: JobKey, lease: Lease)] = []
        for (batchID, batch) in batches {
            for (seq, lease) in batch.leases where lease.worker == id { held.append((JobKey(batch: batchID, seq: seq), lease)) }
        }
        held.sort { $0.key.seq < $1.key.seq }
        let attempted = counted ? held.count { !undelivered.contains($0.key) } : 0
        var returned: [BatchID: [(seq: Int64, attempt: UInt16, record: [UInt8])]] = [:]
        var setAside: [BatchID: [Suspect]] = [:]
        var suspected = 0
        for (key, lease) in held {
            batches[key.batch]!.leases[key.seq] = nil
            // A cancelled batch sends nothing more: what its lost worker held is dropped.
            if batches[key.batch]!.cancelled { continue }
            if !counted || undelivered.contains(key) {
                if worker.isolating {
                    // A group under test that was not attempted is tested again as it was.
                    setAside[key.batch, default: []].append(Suspect(seq: key.seq, attempt: lease.attempt, record: lease.record, group: held.count))
                } else {
                    returned[key.batch, default: []].append((key.seq, lease.attempt, lease.record))
                }
            } else if attempted == 1 {
                let attempt = lease.attempt + 1
                actions.append(.recordFailure(batch: key.batch, seq: key.seq, attempt: Int(attempt), worker: worker.name, reason: reason))
                if Int(attempt) >= configuration.maxAttempts {
                    batches[key.batch]?.failed += 1
                    batches[key.batch]?.attempts[key.seq] = nil
                    actions.append(.deadLetter(batch: key.batch, seq: key.seq, attempts: Int(attempt), reason: reason))
                } else {
                    batches[key.batch]?.attempts[key.seq] = attempt
                    setAside[key.batch, default: []].append(Suspect(seq: key.seq, attempt: attempt, record: lease.record, group: 1))
                }
            } else {
                suspected += 1
                setAside[key.batch, default: []].append(Suspect(seq: key.seq, attempt: lease.attempt, record: lease.record,
                                                                group: min(configuration.bundleSize, (attempted + 1) / 2)))
            }
        }
        for (batchID, jobs) in returned {
            guard var batch = batches.removeValue(forKey: batchID) else { continue }
            batch.pending = jobs + Array(batch.pending[batch.pendingHead...])
            batch.pendingHead = 0
            batches[batchID] = batch
        }
        // First in line, so that a split group is tested while its halves are fresh.
        for (batchID, jobs) in setAside { batches[batchID]?.suspects.insert(contentsOf: jobs, at: 0) }
        if suspected > 0 { actions.append(.setAside(count: suspected)) }
        for batchID in Set(held.map(\.key.batch)) { actions += checkCompleted(batchID) }
        return actions
    }

    /// Time passed: send heartbeats, bury silent workers, forget batches that have ended.
    mutating func tick(now: Int64) -> [Action] {
        forgetFinished()
        var actions: [Action] = []
        let deadline = configuration.heartbeatInterval * configuration.liveness
        for (id, worker) in workers {
            if worker.absent {
                // Not back in time: what it held goes back uncharged (the coordinator was away).
                if now - worker.lastReceived > deadline { actions += workerLost(id, counted: false) }
            } else if now - worker.lastReceived > deadline {
                actions += workerLost(id)
            } else if worker.inFlight > 0 && now - worker.progressAt > configuration.leaseTimeout {
                // Alive but stalled: its jobs go to others (each costs an attempt, as a lost
                // worker's do), and it is asked to announce itself again.
                actions.append(.violation(kind: "leases_expired", count: worker.inFlight))
                actions += workerLost(id)
                actions.append(.send(worker: id, .disconnect))
            } else if now - worker.lastSent >= configuration.heartbeatInterval {
                workers[id]!.lastSent = now
                actions.append(.send(worker: id, .heartbeat))
            }
        }
        return actions + dispatch(now: now)
    }

    /// The coordinator held (it could not confirm its leadership, and closed its endpoints) and
    /// listens again: every connection it knew has ended. Each is kept with its leases for
    /// `grace` milliseconds more than a live one's liveness, for its worker to announce itself
    /// on a new connection, whose READY takes those leases back (`reclaim`), so that no job is
    /// sent to a second worker meanwhile. One that does not come back is lost uncharged.
    mutating func resumed(now: Int64, grace: Int64) {
        for id in Array(workers.keys) {
            workers[id]!.absent = true
            workers[id]!.lastReceived = now + grace
        }
        if let id = isolator, workers[id]?.absent == true { isolator = nil }
    }

    /// A send to this worker failed (ROUTER_MANDATORY: it is no longer connected). It vanished
    /// without DISCONNECT, most likely dead: its jobs go back as after silence, except those
    /// of the message that failed (`undelivered`), which never reached it.
    mutating func sendFailed(to worker: [UInt8], undelivered: JobBundle? = nil, now: Int64) -> [Action] {
        let notSent = Set(undelivered.map { bundle in bundle.jobs.map { JobKey(batch: bundle.batchID, seq: $0.seq) } } ?? [])
        return workerLost(worker, counted: true, undelivered: notSent) + dispatch(now: now)
    }

    // MARK: Decisions

    /// Sends bundles to every worker with spare credit, round-robin over batches. Suspects go
    /// first, to the isolating worker only (`isolate`). A job whose scoring failed before goes
    /// alone, and a worker holds at most one such job: a record that makes scoring fail cannot
    /// spend the attempts of the jobs around it.
    mutating func dispatch(now: Int64) -> [Action] {
        var actions = isolate(now: now)
        let ids = workers.keys.filter { $0 != isolator && !workers[$0]!.absent }.sorted { workers[$0]!.inFlight < workers[$1]!.inFlight }
        for workerID in ids {
            guard let worker = workers[workerID], worker.retriedHeld.isEmpty, worker.credit > worker.inFlight,
                  let batchID = batchOrder.first(where: { batches[$0].map { !$0.retries.isEmpty && !$0.completed } ?? false })
            else { continue }
            let job = batches[batchID]!.retries.removeFirst()
            batches[batchID]!.leases[job.seq] = Lease(worker: workerID, attempt: job.attempt, record: job.record, since: now)
            batches[batchID]!.highestLeased = max(batches[batchID]!.highestLeased, job.seq)
            holding(workerID, 1, now: now)
            workers[workerID]!.retriedHeld.insert(JobKey(batch: batchID, seq: job.seq))
            workers[workerID]!.lastSent = now
            actions.append(.send(worker: workerID, .jobs(JobBundle(batchID: batchID, criteriaSHA256: batches[batchID]!.criteriaSHA256,
                                                                   jobs: [Job(seq: job.seq, attempt: job.attempt, record: job.record)]))))
        }
        var progress = true
        while progress {
            progress = false
            let waiting = batches.values.reduce(0) { $0 + $1.pending.count - $1.pendingHead }
            for workerID in ids {
                guard let worker = workers[workerID] else { continue }
                let room = min(configuration.bundleSize, worker.credit - worker.inFlight)
                // Full bundles while there is work for them: a worker with less room gets its next
                // bundle when a commit frees enough. (Topping it up made bundles of any size, each
                // a transaction paying for a commit: 166 jobs on average instead of 256.)
                let full = min(configuration.bundleSize, worker.credit)
                guard room > 0, room >= full || waiting < full, let batchID = nextBatchWithWork() else { continue }
                var batch = batches.removeValue(forKey: batchID)!
                var jobs: [Job] = []
                while jobs.count < room && batch.pendingHead < batch.pending.count {
                    let job = batch.pending[batch.pendingHead]
                    // A job that failed before travels alone, so that a poison record cannot
                    // take the attempts of the jobs around it.
                    if job.attempt > 0 && !jobs.isEmpty { break }
                    batch.pendingHead += 1
                    if batch.doneWhilePending.remove(job.seq) != nil { continue }
                    jobs.append(Job(seq: job.seq, attempt: job.attempt, record: job.record))
                    if job.attempt > 0 { break }
                }
                if batch.pendingHead > 4096 && batch.pendingHead * 2 > batch.pending.count {
                    batch.pending.removeFirst(batch.pendingHead)
                    batch.pendingHead = 0
                }
                for job in jobs {
                    batch.leases[job.seq] = Lease(worker: workerID, attempt: job.attempt, record: job.record, since: now)
                    batch.highestLeased = max(batch.highestLeased, job.seq)
                }
                batches[batchID] = batch
                guard !jobs.isEmpty else { progress = true; continue }
                holding(workerID, jobs.count, now: now)
                workers[workerID]!.lastSent = now
                actions.append(.send(worker: workerID, .jobs(JobBundle(batchID: batchID, criteriaSHA256: batch.criteriaSHA256, jobs: jobs))))
                actions += refill(batchID)
                progress = true
            }
        }
        return actions
    }

    /// Suspects are tested by one worker at a time, which holds nothing else while it does: a
    /// group lost there is known to be what killed it, or to have been with what did. The
    /// isolating worker is one that holds nothing, or else the one that holds least: it is
    /// sent nothing more until it has drained (a worker that falls idle first takes its place).
    /// A group is at most the first suspect's `group` jobs of one batch, of those set aside
    /// together (the same `group`), and at most the worker's credit.
    private mutating func isolate(now: Int64) -> [Action] {
        if let id = isolator, let worker = workers[id], worker.isolating {
            guard worker.inFlight == 0 else { return [] }
            workers[id]!.isolating = false
        }
        guard let batchID = batchOrder.first(where: { batches[$0].map { !$0.suspects.isEmpty } ?? false }) else {
            isolator = nil
            return []
        }
        if isolator.flatMap({ workers[$0] }).map({ $0.inFlight > 0 }) ?? true {
            let fewest: (Worker, Worker) -> Bool = {
                $0.inFlight < $1.inFlight || ($0.inFlight == $1.inFlight && $0.id.lexicographicallyPrecedes($1.id))
            }
            let present = workers.values.filter { !$0.absent }
            if let idle = present.filter({ $0.inFlight == 0 }).min(by: fewest) {
                isolator = idle.id
            } else if isolator.flatMap({ workers[$0] }) == nil {
                isolator = present.min(by: fewest)?.id
            }
        }
        guard let id = isolator, let worker = workers[id], worker.inFlight == 0 else { return [] }
        var batch = batches.removeValue(forKey: batchID)!
        let first = batch.suspects[0]
        let limit = max(1, min(first.group, worker.credit, configuration.bundleSize))
        var count = 1
        while count < limit && count < batch.suspects.count && batch.suspects[count].group == first.group { count += 1 }
        let group = Array(batch.suspects[..<count])
        batch.suspects.removeFirst(count)
        for job in group {
            batch.leases[job.seq] = Lease(worker: id, attempt: job.attempt, record: job.record, since: now)
            batch.highestLeased = max(batch.highestLeased, job.seq)
        }
        batches[batchID] = batch
        holding(id, count, now: now)
        workers[id]!.isolating = true
        workers[id]!.lastSent = now
        return [.send(worker: id, .jobs(JobBundle(batchID: batchID, criteriaSHA256: batch.criteriaSHA256,
                                                   jobs: group.map { Job(seq: $0.seq, attempt: $0.attempt, record: $0.record) })))]
    }

    /// The worker holds `count` more jobs; one that held none starts its lease clock now.
    private mutating func holding(_ worker: [UInt8], _ count: Int, now: Int64) {
        if workers[worker]!.inFlight == 0 { workers[worker]!.progressAt = now }
        workers[worker]!.inFlight += count
    }

    /// Batches whose completion is recorded, or that were cancelled, and that no worker holds a
    /// job of, are dropped: the coordinator's memory is bounded by the batches running, not by
    /// every batch it has seen. Their STATUS is answered from the store; a RETRY opens them again.
    mutating func forgetFinished() {
        let finished = batchOrder.filter { id in batches[id].map { ($0.completionRecorded || $0.cancelled) && $0.leases.isEmpty } ?? true }
        guard !finished.isEmpty else { return }
        let gone = Set(finished)
        for id in gone { batches[id] = nil }
        batchOrder.removeAll { gone.contains($0) }
        nextBatchIndex = batchOrder.isEmpty ? 0 : nextBatchIndex % batchOrder.count
    }

    private mutating func nextBatchWithWork() -> BatchID? {
        guard !batchOrder.isEmpty else { return nil }
        for offset in 0..<batchOrder.count {
            let id = batchOrder[(nextBatchIndex + offset) % batchOrder.count]
            if let batch = batches[id], batch.pendingHead < batch.pending.count {
                nextBatchIndex = (nextBatchIndex + offset + 1) % batchOrder.count
                return id
            }
        }
        return nil
    }

    /// Asks the store for more jobs when the window runs low.
    private mutating func refill(_ id: BatchID) -> [Action] {
        guard let batch = batches[id], batch.storeHasMore, !batch.loadInFlight, !batch.completed, !batch.cancelled else { return [] }
        let room = configuration.pendingWindow - pendingCount
        guard batch.pendingCount < configuration.pendingWindow / 2, room >= configuration.bundleSize else { return [] }
        batches[id]!.loadInFlight = true
        // Pages of a bounded size: the store's answer is held in memory twice on its way here.
        return [.load(batch: id, afterSeq: batch.loadedThrough, limit: min(room, configuration.loadPage))]
    }

    /// The store's counts of a batch (after `reconcile`): assessments and active dead letters.
    /// Work committed while this coordinator was not watching (a restart) is counted here.
    mutating func reconciled(_ id: BatchID, accepted: Int64? = nil, assessed: Int64, deadLetters: Int64, now: Int64) -> [Action] {
        guard var batch = batches[id] else { return [] }
        batch.reconcileInFlight = false
        // A chunk stored while its answer was lost (the connection broke after COMMIT) is
        // counted from the store.
        if let accepted, accepted > batch.accepted {
            batch.accepted = accepted
            batch.storeHasMore = true
        }
        batch.done = max(batch.done, assessed)
        batch.failed = max(batch.failed, deadLetters)
        if batch.done + batch.failed < batch.accepted {
            // Some jobs are neither assessed, given up, pending nor leased: read the batch again.
            batch.readAgain()
        }
        batches[id] = batch
        return refill(id) + checkCompleted(id) + dispatch(now: now)
    }

    private mutating func checkCompleted(_ id: BatchID) -> [Action] {
        if let batch = batches[id], !batch.completed, batch.intakeClosed, !batch.reconcileInFlight, !batch.loadInFlight,
           batch.reconcileRounds < 3,
           !batch.storeHasMore, batch.done + batch.failed < batch.accepted,
           batch.nothingWaiting,
           batch.leases.isEmpty {
            batches[id]!.reconcileInFlight = true
            batches[id]!.reconcileRounds += 1
            return [.reconcile(id)]
        }
        return completeIfDone(id)
    }

    private mutating func completeIfDone(_ id: BatchID) -> [Action] {
        guard var batch = batches[id], !batch.completed, batch.intakeClosed,
              batch.done + batch.failed >= batch.accepted, !batch.storeHasMore || batch.accepted == batch.done + batch.failed
        else { return [] }
        guard batch.nothingWaiting else { return [] }
        batch.completed = true
        batch.pending = []
        batch.pendingHead = 0
        batches[id] = batch
        return [.markCompleted(id)]
    }
}
