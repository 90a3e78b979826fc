import Identifiers
import Testing
@testable import Coordinator
import TestSupport
import Wire

/// `Dispatcher` against a model of everything around it: a store that answers its requests in
/// any order, and workers that join, commit, fail, stall, vanish, reconnect and lie, with
/// batches opened, closed, cancelled and retried in between. Seeded: a failing seed replays.
/// After every step the invariants a coordinator lives by are checked, and at the end every
/// batch must complete exactly once and be forgotten.
@Suite struct DispatcherModelTests {
    @Test(arguments: Array(UInt64(1)...UInt64(64)))
    func invariantsHoldUnderRandomInterleavings(seed: UInt64) throws {
        var model = DispatcherModel(seed: seed)
        for _ in 0..<1_000 {
            model.step()
            if let broken = model.violation { Issue.record("seed \(seed), step \(model.steps): \(broken)"); return }
        }
        model.drain()
        if let broken = model.violation { Issue.record("seed \(seed), draining: \(broken)"); return }
        model.checkFinished()
        if let broken = model.violation { Issue.record("seed \(seed), at the end: \(broken)") }
    }
}

/// The store's side of one batch.
struct ModelBatch {
    var records: [Int64: [UInt8]] = [:]
    var assessed: Set<Int64> = []
    /// Open dead letters.
    var dead: Set<Int64> = []
    var intakeClosed = false
    var cancelled = false
    /// Completions asked for (`markCompleted`) since the batch last ran again.
    var completions = 0
    var recorded = false
    var accepted: Int64 { Int64(records.count) }
    var settled: Bool { records.keys.allSatisfy { assessed.contains($0) || dead.contains($0) } }
}

/// A worker process as the model runs it.
struct ModelWorker {
    var name: String
    /// Jobs it holds (sent to it, not yet reported).
    var held: Set<JobKey> = []
    /// Heartbeats but never reports: its leases must expire.
    var stalls = false
    /// Told to announce itself again (DISCONNECT): it holds nothing until it does.
    var mustAnnounce = false
}

struct DispatcherModel {
    var rng: SplitMix64
    var d: Dispatcher
    var now: Int64 = 0
    var steps = 0
    var batches: [BatchID: ModelBatch] = [:]
    var order: [BatchID] = []
    var workers: [[UInt8]: ModelWorker] = [:]
    var nextWorker = 0
    /// Requests to the store, answered in random order.
    var loads: [(BatchID, Int64, Int)] = []
    var reconciles: [BatchID] = []
    var verifies: [(BatchID, [Int64])] = []
    var completions: [BatchID] = []
    var violation: String?
    let sha = [UInt8](repeating: 1, count: 32)

    init(seed: UInt64) {
        rng = SplitMix64(seed: seed)
        d = Dispatcher(configuration: .init(bundleSize: 16, pendingWindow: 200, loadPage: 50, heartbeatInterval: 1_000, liveness: 3,
                                            maxAttempts: 3, maxCredit: 64, leaseTimeout: 20_000))
    }

    mutating func fail(_ message: String) { if violation == nil { violation = message } }

    mutating func pick<T>(_ items: [T]) -> T? { items.isEmpty ? nil : items[Int.random(in: 0..<items.count, using: &rng)] }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    var receiving: [BatchID] { order.filter { batches[$0].map { !$0.intakeClosed && !$0.cancelled } ?? false } }
    var liveWorkers: [[UInt8]] { workers.keys.filter { d.workers[$0] != nil }.sorted { $0.lexicographicallyPrecedes($1) } }

    // MARK: Events

    mutating func step() {
        steps += 1
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<4: openBatch()
        case 4..<16: storeChunk()
        case 16..<20: closeIntake()
        case 20..<27: joinWorker()
        case 27..<45: commit()
        case 45..<49: failSome()
        case 49..<52: vanish()
        case 52..<54: disconnect()
        case 54..<57: reconnectAs()
        case 57..<59: lie()
        case 59..<70: passTime()
        case 70..<95: answerStore()
        case 95..<97: cancel()
        case 97: holdAndResume()
        default: retry()
        }
        check()
    }

    mutating func openBatch() {
        guard order.count < 6 else { return }
        let id = BatchID(bytes: (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) })
        batches[id] = ModelBatch()
        order.append(id)
        apply(d.batchOpened(id, criteriaSHA256: sha, accepted: 0, rejected: 0, done: 0, intakeClosed: false))
    }

    mutating func storeChunk() {
        guard let id = pick(receiving) else { return }
        let first = batches[id]!.accepted + 1
        let count = Int64.random(in: 1...60, using: &rng)
        var jobs: [(seq: Int64, record: [UInt8])] = []
        for seq in first..<(first + count) {
            batches[id]!.records[seq] = Array("{\"seq\":\(seq)}".utf8)
            jobs.append((seq, batches[id]!.records[seq]!))
        }
        apply(d.chunkStored(id, jobs: jobs, rejected: Int.random(in: 0...2, using: &rng), now: now))
    }

    mutating func closeIntake() {
        guard let id = pick(receiving.filter { batches[$0]!.accepted > 0 }) else { return }
        batches[id]!.intakeClosed = true
        apply(d.intakeClosed(id))
    }

    mutating func joinWorker() {
        // A worker told to announce itself again does; otherwise a new one joins.
        if let id = pick(workers.keys.filter { workers[$0]!.mustAnnounce }), let worker = workers[id] {
            workers[id]!.mustAnnounce = false
            apply(d.received(from: id, .ready(name: worker.name, credit: credit()), now: now), to: id)
            return
        }
        guard workers.count < 6 else { return }
        nextWorker += 1
        let id = Array("w\(nextWorker)".utf8)
        workers[id] = ModelWorker(name: "w\(nextWorker)", stalls: chance(0.15))
        apply(d.received(from: id, .ready(name: "w\(nextWorker)", credit: credit()), now: now), to: id)
    }

    /// Mostly modest credit; sometimes absurd (the coordinator caps it).
    mutating func credit() -> UInt32 { pick([1, 4, 16, 40, 64, 1_000, UInt32.max])! }

    /// A worker commits some of what it holds (the store first, then DONE), maybe with failures.
    mutating func commit(failing: Bool = false) {
        guard let id = pick(liveWorkers.filter { !workers[$0]!.held.isEmpty && !workers[$0]!.stalls }) else { return }
        var byBatch: [BatchID: [Int64]] = [:]
        for key in workers[id]!.held where chance(0.7) { byBatch[key.batch, default: []].append(key.seq) }
        for (batch, seqs) in byBatch {
            var committed: [Int64] = []
            var failed: [JobFailure] = []
            for seq in seqs.sorted() {
                workers[id]!.held.remove(JobKey(batch: batch, seq: seq))
                if failing && chance(0.5) {
                    failed.append(JobFailure(seq: seq, reason: "scoring failed"))
                } else {
                    if batches[batch]!.assessed.contains(seq) { fail("job \(seq) of \(batch) scored twice") }
                    batches[batch]!.assessed.insert(seq)
                    committed.append(seq)
                }
            }
            apply(d.received(from: id, .done(batchID: batch, committed: committed, failed: failed), now: now), to: id)
        }
    }

    mutating func failSome() { commit(failing: true) }

    /// Dies without a word: found by silence (or by a failed send).
    mutating func vanish() {
        guard let id = pick(liveWorkers) else { return }
        workers[id] = nil
        if chance(0.5) { apply(d.sendFailed(to: id, now: now)) }
    }

    mutating func disconnect() {
        guard let id = pick(liveWorkers) else { return }
        // A draining worker reports what it finished first; the rest it gives back.
        workers[id] = nil
        apply(d.received(from: id, .disconnect, now: now))
    }

    /// The same process on a new connection (its socket reconnected): READY names what it holds.
    mutating func reconnectAs() {
        guard let old = pick(liveWorkers.filter { !workers[$0]!.held.isEmpty }), let worker = workers[old] else { return }
        workers[old] = nil
        announce(worker)
    }

    /// `worker` on a new connection: its READY names what it holds.
    mutating func announce(_ worker: ModelWorker) {
        nextWorker += 1
        let id = Array("w\(nextWorker)".utf8)
        workers[id] = worker
        var groups: [BatchID: [(Int64, UInt16)]] = [:]
        for key in worker.held { groups[key.batch, default: []].append((key.seq, 0)) }
        let held = groups.map { HeldJobs(batchID: $0.key, jobs: $0.value.sorted { $0.0 < $1.0 }) }
        // Credit for what it holds at least: a worker holding more than its credit breaks the protocol.
        let credit = max(credit(), UInt32(worker.held.count))
        apply(d.received(from: id, .ready(name: worker.name, credit: credit, held: held), now: now), to: id)
    }

    /// The coordinator could not confirm its leadership, closed its endpoints and resumed (what
    /// `Loop.resume` does): every connection has ended; each worker that lived on announces on a
    /// new connection what it holds, and one may have died meanwhile (its leases go back,
    /// uncharged, once its grace is over).
    mutating func holdAndResume() {
        let ids = liveWorkers
        d.resumed(now: now, grace: 10_000)
        for old in ids {
            guard let worker = workers.removeValue(forKey: old), chance(0.8) else { continue }
            announce(worker)
        }
    }

    /// A registered worker claims jobs it never held (and never wrote).
    mutating func lie() {
        guard let id = pick(liveWorkers), let batch = pick(order), let model = batches[batch], model.accepted > 0 else { return }
        let claims = (0..<3).map { _ in Int64.random(in: 1...model.accepted, using: &rng) }.filter { seq in
            !workers.values.contains { $0.held.contains(JobKey(batch: batch, seq: seq)) }
        }
        apply(d.received(from: id, .done(batchID: batch, committed: claims, failed: []), now: now), to: id)
    }

    /// Time passes; live workers heartbeat (stalled ones too), then the dispatcher ticks.
    mutating func passTime() {
        now += Int64.random(in: 100...6_000, using: &rng)
        for id in liveWorkers { apply(d.received(from: id, .heartbeat, now: now), to: id) }
        apply(d.tick(now: now))
    }

    mutating func cancel() {
        guard let id = pick(order.filter { !batches[$0]!.cancelled && !batches[$0]!.recorded }) else { return }
        batches[id]!.cancelled = true
        d.cancelled(id)
    }

    /// RETRY: the store queues the open dead letters again; the coordinator (re)opens the batch
    /// with the store's counts, as `CoordinatorService` does, then tells the dispatcher.
    mutating func retry() {
        // The store answers in order: a RETRY comes after the completion it follows is recorded.
        guard let id = pick(order.filter { !batches[$0]!.cancelled && !batches[$0]!.dead.isEmpty && !completions.contains($0) }) else { return }
        let count = batches[id]!.dead.count
        batches[id]!.dead = []
        batches[id]!.completions = 0
        batches[id]!.recorded = false
        let b = batches[id]!
        apply(d.batchOpened(id, criteriaSHA256: sha, accepted: b.accepted, rejected: 0, done: 0, intakeClosed: b.intakeClosed))
        apply(d.retried(id, count: count, now: now))
    }

    /// One of the store's outstanding answers, whichever.
    mutating func answerStore() {
        var kinds: [Int] = []
        if !loads.isEmpty { kinds.append(0) }
        if !reconciles.isEmpty { kinds.append(1) }
        if !verifies.isEmpty { kinds.append(2) }
        if !completions.isEmpty { kinds.append(3) }
        guard let kind = pick(kinds) else { return }
        switch kind {
        case 0:
            let (id, after, limit) = loads.remove(at: Int.random(in: 0..<loads.count, using: &rng))
            let b = batches[id]!
            let open = b.records.keys.filter { $0 > after && !b.assessed.contains($0) && !b.dead.contains($0) }.sorted()
            let page = Array(open.prefix(limit))
            let exhausted = page.count == open.count
            let through = exhausted ? max(after, b.records.keys.max() ?? 0) : page.last!
            apply(d.jobsLoaded(id, jobs: page.map { ($0, b.records[$0]!) }, exhausted: exhausted, through: through, now: now))
        case 1:
            let id = reconciles.remove(at: Int.random(in: 0..<reconciles.count, using: &rng))
            let b = batches[id]!
            apply(d.reconciled(id, accepted: b.accepted, assessed: Int64(b.assessed.count), deadLetters: Int64(b.dead.count), now: now))
        case 2:
            let (id, seqs) = verifies.remove(at: Int.random(in: 0..<verifies.count, using: &rng))
            let present = seqs.filter { batches[id]!.assessed.contains($0) }
            apply(d.doneVerified(id, claimed: seqs.count, present: present, now: now))
        default:
            let id = completions.remove(at: Int.random(in: 0..<completions.count, using: &rng))
            batches[id]!.recorded = true
            d.completionRecorded(id)
        }
    }

    // MARK: The dispatcher's actions, carried out

    mutating func apply(_ actions: [Dispatcher.Action], to sender: [UInt8]? = nil) {
        for action in actions {
            if case .send(let id, _) = action, d.workers[id]?.absent == true {
                fail("a message sent to \(String(decoding: id, as: UTF8.self)), a connection that ended with a hold")
            }
            switch action {
            case .send(let id, .jobs(let bundle)):
                guard d.workers[id] != nil else { fail("JOBS sent to \(String(decoding: id, as: UTF8.self)), which is not registered"); continue }
                guard let model = batches[bundle.batchID] else { fail("JOBS of an unknown batch"); continue }
                if model.cancelled { fail("JOBS of cancelled batch \(bundle.batchID)") }
                for job in bundle.jobs {
                    let key = JobKey(batch: bundle.batchID, seq: job.seq)
                    if model.assessed.contains(job.seq) { fail("job \(job.seq) sent again after it was assessed") }
                    if model.dead.contains(job.seq) { fail("job \(job.seq) sent while dead-lettered") }
                    if let other = workers.first(where: { $0.key != id && $0.value.held.contains(key) }) {
                        fail("job \(job.seq) sent to \(String(decoding: id, as: UTF8.self)) while \(other.value.name) holds it")
                    }
                    if workers[id]?.held.contains(key) == true { fail("job \(job.seq) sent twice to the same worker") }
                    workers[id]?.held.insert(key)
                }
            case .send(let id, .disconnect):
                // Told to announce itself again: what it held was taken back.
                if workers[id] != nil {
                    workers[id]!.held = []
                    workers[id]!.mustAnnounce = true
                }
            case .send: break
            case .load(let id, let after, let limit):
                if loads.contains(where: { $0.0 == id }) { fail("two loads of one batch in flight") }
                loads.append((id, after, limit))
            case .markCompleted(let id):
                guard var model = batches[id] else { fail("completion of an unknown batch"); continue }
                model.completions += 1
                if model.completions > 1 { fail("batch \(id) completed twice") }
                if !model.intakeClosed && !model.cancelled { fail("batch \(id) completed before its intake closed") }
                if !model.cancelled && !model.settled { fail("batch \(id) completed with jobs neither assessed nor dead-lettered") }
                batches[id] = model
                if !model.cancelled { completions.append(id) }
            case .recordFailure: break
            case .deadLetter(let id, let seq, _, _):
                if batches[id]!.assessed.contains(seq) { fail("job \(seq) dead-lettered though assessed") }
                if batches[id]!.dead.contains(seq) { fail("job \(seq) dead-lettered twice") }
                batches[id]!.dead.insert(seq)
            case .reconcile(let id): reconciles.append(id)
            case .verifyDone(let id, let seqs, _): verifies.append((id, seqs))
            case .committedAfter(let milliseconds):
                if milliseconds.contains(where: { $0 < 0 }) { fail("a job committed before it was leased: \(milliseconds)") }
            case .violation, .setAside: break
            }
        }
    }

    // MARK: Invariants

    mutating func check() {
        var leasedBy: [[UInt8]: Int] = [:]
        for (id, batch) in d.batches {
            for (seq, lease) in batch.leases {
                leasedBy[lease.worker, default: 0] += 1
                if d.workers[lease.worker] == nil { fail("job \(seq) leased to a worker that is gone") }
                if workers[lease.worker]?.held.contains(JobKey(batch: id, seq: seq)) == false, workers[lease.worker]?.mustAnnounce == false {
                    fail("job \(seq) leased to \(workers[lease.worker]!.name), which does not hold it")
                }
            }
            let waiting = batch.pending[batch.pendingHead...].map(\.seq).filter { !batch.doneWhilePending.contains($0) }
                + batch.retries.map(\.seq) + batch.suspects.map(\.seq)
            if Set(waiting).count != waiting.count { fail("a job waits twice in batch \(id): \(waiting.sorted())") }
            if let both = waiting.first(where: { batch.leases[$0] != nil }) { fail("job \(both) both waiting and leased") }
            guard let model = batches[id] else { fail("the dispatcher holds a batch nobody opened"); continue }
            if batch.done > Int64(model.assessed.count) { fail("batch \(id) counts \(batch.done) done, the store holds \(model.assessed.count)") }
            if batch.failed > Int64(model.dead.count) { fail("batch \(id) counts \(batch.failed) failed, the store holds \(model.dead.count)") }
        }
        for (id, worker) in d.workers {
            if worker.inFlight != leasedBy[id, default: 0] { fail("\(worker.name) counts \(worker.inFlight) in flight, holds \(leasedBy[id, default: 0]) leases") }
            if worker.inFlight > worker.credit { fail("\(worker.name) holds \(worker.inFlight), above its credit \(worker.credit)") }
            if worker.credit > d.configuration.maxCredit { fail("\(worker.name) granted credit \(worker.credit)") }
        }
    }

    /// Every intake closes, honest workers join, and everything runs to its end.
    mutating func drain() {
        for id in order where !batches[id]!.intakeClosed && !batches[id]!.cancelled {
            if batches[id]!.accepted == 0 { storeChunkInto(id) }
            batches[id]!.intakeClosed = true
            apply(d.intakeClosed(id))
        }
        for id in liveWorkers where workers[id]!.stalls { workers[id]!.stalls = false }
        for _ in 0..<2 {
            nextWorker += 1
            let id = Array("w\(nextWorker)".utf8)
            workers[id] = ModelWorker(name: "w\(nextWorker)")
            apply(d.received(from: id, .ready(name: "w\(nextWorker)", credit: 64), now: now), to: id)
        }
        for _ in 0..<5_000 {
            if violation != nil { return }
            let finished = order.allSatisfy { batches[$0]!.cancelled || batches[$0]!.recorded }
            if finished && loads.isEmpty && reconciles.isEmpty && verifies.isEmpty && completions.isEmpty
                && d.batches.values.allSatisfy({ $0.leases.isEmpty }) { return }
            for id in workers.keys where workers[id]!.mustAnnounce {
                workers[id]!.mustAnnounce = false
                apply(d.received(from: id, .ready(name: workers[id]!.name, credit: 64), now: now), to: id)
            }
            while !loads.isEmpty || !reconciles.isEmpty || !verifies.isEmpty || !completions.isEmpty { answerStore() }
            for id in liveWorkers where !workers[id]!.held.isEmpty {
                var byBatch: [BatchID: [Int64]] = [:]
                for key in workers[id]!.held { byBatch[key.batch, default: []].append(key.seq) }
                workers[id]!.held = []
                for (batch, seqs) in byBatch {
                    for seq in seqs { batches[batch]!.assessed.insert(seq) }
                    apply(d.received(from: id, .done(batchID: batch, committed: seqs.sorted(), failed: []), now: now), to: id)
                }
            }
            passTime()
            check()
        }
        fail("the system did not settle: \(order.filter { !batches[$0]!.recorded && !batches[$0]!.cancelled }.count) batches unfinished")
    }

    mutating func storeChunkInto(_ id: BatchID) {
        batches[id]!.records[1] = Array("{}".utf8)
        apply(d.chunkStored(id, jobs: [(1, batches[id]!.records[1]!)], rejected: 0, now: now))
    }

    /// Each batch completed once (unless cancelled), every job assessed or dead-lettered, none
    /// scored twice, and the dispatcher holds no batch that has finished: its memory is bounded
    /// by the batches running, not by every batch it has ever seen.
    mutating func checkFinished() {
        passTime()
        for id in order {
            let model = batches[id]!
            if model.cancelled { continue }
            if model.completions != 1 { fail("batch \(id) completed \(model.completions) times") }
            if !model.settled { fail("batch \(id) has jobs neither assessed nor dead-lettered") }
            if let held = d.batches[id] { fail("finished batch \(id) still held (done \(held.done) of \(held.accepted))") }
        }
        let cancelledHeld = order.filter { batches[$0]!.cancelled && d.batches[$0] != nil }
        if !cancelledHeld.isEmpty { fail("\(cancelledHeld.count) cancelled batches, drained, still held") }
    }
}
