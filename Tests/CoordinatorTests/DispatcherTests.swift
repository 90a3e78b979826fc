import Identifiers
import Testing
@testable import Coordinator
import TestSupport
import Wire

/// The dispatch state machine, driven with no sockets and no database.
@Suite struct DispatcherTests {
    let batch = BatchID()
    let sha = [UInt8](repeating: 1, count: 32)
    let w1 = Array("w1".utf8), w2 = Array("w2".utf8)

    func jobs(_ range: ClosedRange<Int64>) -> [(seq: Int64, record: [UInt8])] {
        range.map { ($0, Array("{}".utf8)) }
    }

    func bundles(_ actions: [Dispatcher.Action]) -> [(worker: [UInt8], bundle: JobBundle)] {
        actions.compactMap {
            if case .send(let worker, .jobs(let bundle)) = $0 { return (worker, bundle) }
            return nil
        }
    }

    func machine(bundleSize: Int = 10, window: Int = 1000, maxAttempts: Int = 3) -> Dispatcher {
        var d = Dispatcher(configuration: .init(bundleSize: bundleSize, pendingWindow: window, heartbeatInterval: 1000, liveness: 3, maxAttempts: maxAttempts))
        _ = d.batchOpened(batch, criteriaSHA256: sha, accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        return d
    }

    @Test func sendsFullBundlesUpToTheWorkersCredit() {
        var d = machine()
        _ = d.chunkStored(batch, jobs: jobs(1...100), rejected: 0, now: 0)
        let sent = bundles(d.received(from: w1, .ready(name: "w1", credit: 25), now: 0))
        // Room for 5 more is no bundle while a full one waits: it goes when a commit frees room.
        #expect(sent.map(\.bundle.jobs.count) == [10, 10])
        #expect(sent.flatMap(\.bundle.jobs).map(\.seq) == Array(1...20))
        #expect(d.leasedCount == 20)
        #expect(bundles(d.tick(now: 10)).isEmpty)
        let more = bundles(d.received(from: w1, .done(batchID: batch, committed: Array(1...10), failed: []), now: 20))
        #expect(more.map(\.bundle.jobs.count) == [10])
        #expect(more.flatMap(\.bundle.jobs).map(\.seq) == Array(21...30))
        #expect(d.progress(batch)?.done == 10)
    }

    @Test func theLastJobsGoInAPartialBundle() {
        var d = machine()
        _ = d.chunkStored(batch, jobs: jobs(1...25), rejected: 0, now: 0)
        let sent = bundles(d.received(from: w1, .ready(name: "w1", credit: 100), now: 0))
        #expect(sent.map(\.bundle.jobs.count) == [10, 10, 5])
        // A worker whose credit is below the bundle size still gets work.
        var small = machine()
        _ = small.chunkStored(batch, jobs: jobs(1...100), rejected: 0, now: 0)
        #expect(bundles(small.received(from: w2, .ready(name: "w2", credit: 4), now: 0)).map(\.bundle.jobs.count) == [4])
    }

    @Test func completesOnceWhenIntakeIsClosedAndEveryJobIsDone() {
        var d = machine()
        _ = d.chunkStored(batch, jobs: jobs(1...5), rejected: 2, now: 0)
        _ = d.received(from: w1, .ready(name: "w1", credit: 100), now: 0)
        #expect(d.intakeClosed(batch).isEmpty)
        let actions = d.received(from: w1, .done(batchID: batch, committed: [1, 2, 3, 4, 5], failed: []), now: 1)
        #expect(actions.contains(.markCompleted(batch)))
        // Clients hear "completed" only once the store has recorded it.
        #expect(d.progress(batch)?.state == .running)
        d.completionRecorded(batch)
        #expect(d.progress(batch) == BatchProgress(batchID: batch, state: .completed, accepted: 5, rejected: 2, done: 5, failed: 0))
        // A duplicate DONE neither double-counts nor completes again.
        let again = d.received(from: w1, .done(batchID: batch, committed: [5], failed: []), now: 2)
        #expect(!again.contains(.markCompleted(batch)))
        #expect(d.progress(batch)?.done == 5)
    }

    @Test func aSilentWorkersJobsGoToAnother() {
        var d = machine()
        _ = d.chunkStored(batch, jobs: jobs(1...8), rejected: 0, now: 0)
        let first = bundles(d.received(from: w1, .ready(name: "w1", credit: 8), now: 0))
        #expect(first.flatMap(\.bundle.jobs).count == 8)
        _ = d.received(from: w2, .ready(name: "w2", credit: 8), now: 2_000)
        _ = d.received(from: w2, .heartbeat, now: 3_000)
        // w1 silent for more than 3 intervals: its jobs are re-sent, charged nothing (it held
        // eight: nothing says one of them killed it).
        var moved = bundles(d.tick(now: 3_500))
        #expect(d.workers[w1] == nil)
        var seqs: [Int64] = []
        while let next = moved.first {
            #expect(next.worker == w2)
            #expect(next.bundle.jobs.allSatisfy { $0.attempt == 0 })
            seqs += next.bundle.jobs.map(\.seq)
            moved = bundles(d.received(from: w2, .done(batchID: batch, committed: next.bundle.jobs.map(\.seq), failed: []), now: 3_600))
        }
        #expect(seqs == Array(1...8))
    }

    @Test func lateDoneFromAPresumedDeadWorkerStillCountsOnce() {
        var d = machine()
        _ = d.chunkStored(batch, jobs: jobs(1...4), rejected: 0, now: 0)
        _ = d.received(from: w1, .ready(name: "w1", credit: 4), now: 0)
        _ = d.intakeClosed(batch)
        _ = d.tick(now: 10_000)  // w1 declared dead, jobs back to pending
        // Its DONE arrives after all: it holds no lease now, so the store is asked first;
        // the results were committed, so they count, and are not re-sent.
        let actions = d.received(from: w1, .done(batchID: batch, committed: [1, 2, 3, 4], failed: []), now: 10_001)
        #expect(actions.contains(.send(worker: w1, .disconnect)))
        #expect(actions.contains(.verifyDone(batch: batch, seqs: [1, 2, 3, 4], worker: "an unregistered worker")))
        #expect(!actions.contains(.markCompleted(batch)))
        #expect(d.doneVerified(batch, claimed: 4, present: [1, 2, 3, 4], now: 10_001).contains(.markCompleted(batch)))
        #expect(bundles(d.received(from: w2, .ready(name: "w2", credit: 10), now: 10_002)).isEmpty)
        #expect(d.progress(batch)?.done == 4)
    }

    @Test func failuresAreRetriedThenCountedAsFailed() {
        var d = machine(maxAttempts: 2)
        _ = d.chunkStored(batch, jobs: jobs(1...1), rejected: 0, now: 0)
        _ = d.intakeClosed(batch)
        _ = d.received(from: w1, .ready(name: "w1", credit: 10), now: 0)
        let retry = bundles(d.received(from: w1, .done(batchID: batch, committed: [], failed: [JobFailure(seq: 1, reason: "boom")]), now: 1))
        #expect(retry.first?.bundle.jobs.first?.attempt == 1)
        let last = d.received(from: w1, .done(batchID: batch, committed: [], failed: [JobFailure(seq: 1, reason: "boom")]), now: 2)
        #expect(bundles(last).isEmpty)
        #expect(last.contains(.markCompleted(batch)))
        #expect(d.progress(batch)?.failed == 1)
    }

    @Test func unreachableWorkerReturnsItsJobs() {
        var d = machine()
        _ = d.chunkStored(batch, jobs: jobs(1...3), rejected: 0, now: 0)
        let first = bundles(d.received(from: w1, .ready(name: "w1", credit: 10), now: 0))
        #expect(first.first?.worker == w1)
        _ = d.received(from: w2, .ready(name: "w2", credit: 10), now: 0)
        // w1 vanished (its connection is gone) holding three jobs: nothing says which, if any,
        // killed it, so none is charged; they go to w2 in groups of at most half as many.
        let lost = d.sendFailed(to: w1, now: 1)
        #expect(!lost.contains { if case .recordFailure = $0 { true } else { false } })
        #expect(lost.contains(.setAside(count: 3)))
        var resent = bundles(lost)
        var groups: [[Int64]] = []
        while let next = resent.first {
            #expect(next.worker == w2)
            #expect(next.bundle.jobs.allSatisfy { $0.attempt == 0 })
            groups.append(next.bundle.jobs.map(\.seq))
            resent = bundles(d.received(from: w2, .done(batchID: batch, committed: next.bundle.jobs.map(\.seq), failed: []), now: 2))
        }
        #expect(groups == [[1, 2], [3]])
    }

    @Test func aJobWhoseSendFailedIsNotChargedEvenAlone() {
        var d = machine()
        _ = d.chunkStored(batch, jobs: jobs(1...1), rejected: 0, now: 0)
        guard let sent = bundles(d.received(from: w1, .ready(name: "w1", credit: 10), now: 0)).first else { Issue.record("nothing sent"); return }
        // The JOBS to w1 could not be sent (it is gone): the job never reached it.
        let lost = d.sendFailed(to: w1, undelivered: sent.bundle, now: 1)
        #expect(!lost.contains { if case .recordFailure = $0 { true } else { false } })
        #expect(bundles(d.received(from: w2, .ready(name: "w2", credit: 10), now: 2)).first?.bundle.jobs.map(\.attempt) == [0])
    }

    @Test func memoryStaysWithinTheWindowAndTheRestIsLoadedInOrder() {
        var d = machine(bundleSize: 10, window: 50)
        _ = d.chunkStored(batch, jobs: jobs(1...40), rejected: 0, now: 0)
        // Does not fit: stays in the store, read back later.
        let actions = d.chunkStored(batch, jobs: jobs(41...80), rejected: 0, now: 0)
        #expect(d.pendingCount == 40)
        #expect(!actions.contains { if case .load = $0 { return true } else { return false } })
        let sent = d.received(from: w1, .ready(name: "w1", credit: 30), now: 0)
        guard let load = sent.first(where: { if case .load = $0 { return true } else { return false } }),
              case .load(_, let after, let limit) = load else { Issue.record("expected a load"); return }
        #expect(after == 40)
        #expect(limit <= 50)
        #expect(limit == 30)  // asked when pending fell below half the window: 50 minus the 20 then pending
        _ = d.jobsLoaded(batch, jobs: jobs(41...70), exhausted: false, through: 70, now: 1)
        #expect(d.pendingCount <= 50)
        let next = bundles(d.received(from: w1, .done(batchID: batch, committed: Array(1...30), failed: []), now: 2))
        #expect(next.flatMap(\.bundle.jobs).map(\.seq) == Array(31...60))
    }

    @Test func restartedCoordinatorResumesFromTheStore() {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 100))
        let actions = d.batchOpened(batch, criteriaSHA256: sha, accepted: 30, rejected: 0, done: 10, intakeClosed: true)
        #expect(actions == [.load(batch: batch, afterSeq: 0, limit: 100)])
        let loaded = jobs(11...30)
        _ = d.jobsLoaded(batch, jobs: loaded, exhausted: true, through: 30, now: 0)
        let sent = bundles(d.received(from: w1, .ready(name: "w1", credit: 100), now: 0))
        #expect(sent.flatMap(\.bundle.jobs).map(\.seq) == Array(11...30))
        let done = d.received(from: w1, .done(batchID: batch, committed: Array(11...30), failed: []), now: 1)
        #expect(done.contains(.markCompleted(batch)))
    }
}

/// A worker's READY names the jobs it holds; a coordinator that restarted, or the worker's new
/// connection, leaves them with it instead of sending them elsewhere and charging an attempt.
@Suite struct DispatcherHeldJobsTests {
    let batch = BatchID()
    let sha = [UInt8](repeating: 1, count: 32)
    let w1 = Array("w1".utf8), w1again = Array("w1-second-connection".utf8), w2 = Array("w2".utf8)

    func jobs(_ range: ClosedRange<Int64>) -> [(seq: Int64, record: [UInt8])] { range.map { ($0, Array("{}".utf8)) } }
    func sent(_ actions: [Dispatcher.Action], to worker: [UInt8]) -> [Int64] {
        actions.flatMap { action -> [Int64] in
            if case .send(let w, .jobs(let bundle)) = action, w == worker { return bundle.jobs.map(\.seq) }
            return []
        }
    }
    func charged(_ actions: [Dispatcher.Action]) -> [Int64] {
        actions.compactMap { if case .recordFailure(_, let seq, _, _, _) = $0 { return seq } else { return nil } }
    }
    func held(_ range: ClosedRange<Int64>, attempt: UInt16 = 0) -> [HeldJobs] {
        [HeldJobs(batchID: batch, jobs: range.map { ($0, attempt) })]
    }

    @Test func aRestartedCoordinatorLeavesReannouncedJobsWithTheirWorker() {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 100, heartbeatInterval: 1000, liveness: 3))
        _ = d.batchOpened(batch, criteriaSHA256: sha, accepted: 30, rejected: 0, done: 0, intakeClosed: true)
        _ = d.jobsLoaded(batch, jobs: jobs(1...30), exhausted: true, through: 30, now: 0)
        // w1 held 1...10 from the coordinator before; it says so. w2 gets the others only.
        let first = d.received(from: w1, .ready(name: "w1", credit: 10, held: held(1...10)), now: 0)
        #expect(sent(first, to: w1).isEmpty, "its credit is spent on what it holds")
        #expect(d.leasedCount == 10)
        let other = d.received(from: w2, .ready(name: "w2", credit: 100), now: 0)
        #expect(sent(other, to: w2) == Array(11...30))
        // Its DONE counts on its word (they are its leases now), with no check in the store.
        let done = d.received(from: w1, .done(batchID: batch, committed: Array(1...10), failed: []), now: 1)
        #expect(!done.contains { if case .verifyDone = $0 { return true } else { return false } })
        #expect(d.progress(batch)?.done == 10)
    }

    @Test func jobsNotYetReadBackAreLeasedToTheirHolderWhenTheyAre() {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 20, heartbeatInterval: 1000, liveness: 3))
        _ = d.batchOpened(batch, criteriaSHA256: sha, accepted: 40, rejected: 0, done: 0, intakeClosed: true)
        _ = d.jobsLoaded(batch, jobs: jobs(1...20), exhausted: false, through: 20, now: 0)
        // w1 holds 35...36, beyond what is in memory.
        let w1Sent = d.received(from: w1, .ready(name: "w1", credit: 2, held: held(35...36)), now: 0)
        let w2Sent = d.received(from: w2, .ready(name: "w2", credit: 100), now: 0)
        let rest = d.jobsLoaded(batch, jobs: jobs(21...40), exhausted: true, through: 40, now: 1)
        let everything = sent(w1Sent, to: w1) + sent(w2Sent, to: w2) + sent(rest, to: w2) + sent(rest, to: w1)
        #expect(!everything.contains(35) && !everything.contains(36), "sent to nobody: w1 has them")
        #expect(everything.sorted() == Array(1...34) + Array(37...40), "every other job once")
        _ = d.received(from: w1, .done(batchID: batch, committed: [35, 36], failed: []), now: 2)
        #expect(d.progress(batch)?.done == 2)
    }

    @Test func aReconnectedWorkerKeepsWhatItHoldsAndOnlyWhatItLostCostsAnAttempt() {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 100, heartbeatInterval: 1000, liveness: 3))
        _ = d.batchOpened(batch, criteriaSHA256: sha, accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        _ = d.chunkStored(batch, jobs: jobs(1...20), rejected: 0, now: 0)
        #expect(sent(d.received(from: w1, .ready(name: "w1", credit: 20), now: 0), to: w1) == Array(1...20))
        // Its connection broke; 11...20 never reached it. On the new connection it names 1...10:
        // the same process, so 11...20 go back to the queue without an attempt, and to it again.
        let again = d.received(from: w1again, .ready(name: "w1", credit: 20, held: held(1...10)), now: 100)
        #expect(charged(again).isEmpty && d.workers[w1] == nil)
        #expect(sent(again, to: w1again) == Array(11...20))
        #expect(d.workers[w1again]?.inFlight == 20)
        let done = d.received(from: w1again, .done(batchID: batch, committed: Array(1...10), failed: []), now: 2_000)
        #expect(!done.contains { if case .verifyDone = $0 { return true } else { return false } })
        #expect(charged(d.tick(now: 2_500)).isEmpty, "nothing costs an attempt")
    }

    /// After a hold (the coordinator closed its endpoints: every connection ended), a worker
    /// that announces itself again takes back what it holds, nothing is sent to the ended
    /// connections meanwhile, and what a worker that never comes back held returns uncharged
    /// once the grace is over.
    @Test func afterAHoldWorkersTakeBackWhatTheyHoldAndTheMissingAreNotCharged() {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 100, heartbeatInterval: 1000, liveness: 3))
        _ = d.batchOpened(batch, criteriaSHA256: sha, accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        _ = d.chunkStored(batch, jobs: jobs(1...40), rejected: 0, now: 0)
        #expect(sent(d.received(from: w1, .ready(name: "w1", credit: 10), now: 0), to: w1) == Array(1...10))
        #expect(sent(d.received(from: w2, .ready(name: "w2", credit: 10), now: 0), to: w2) == Array(11...20))
        d.resumed(now: 6_000, grace: 10_000)
        // Nothing goes to the ended connections, not even a heartbeat, and nothing is charged.
        let quiet = d.tick(now: 7_000)
        #expect(quiet.allSatisfy { if case .send = $0 { return false } else { return true } })
        // w1 is back on a new connection: it takes its ten back and gets nothing of w2's.
        let back = d.received(from: w1again, .ready(name: "w1", credit: 20, held: held(1...10)), now: 8_000)
        #expect(charged(back).isEmpty && d.workers[w1] == nil)
        #expect(sent(back, to: w1again) == Array(21...30))
        #expect(d.workers[w1again]?.inFlight == 20)
        // w2 never comes back: after the grace and its liveness, 11...20 return, uncharged.
        // (w1 heartbeats meanwhile.)
        for t in stride(from: Int64(9_000), through: 19_000, by: 1_000) { _ = d.received(from: w1again, .heartbeat, now: t) }
        #expect(d.workers[w2] != nil && charged(d.tick(now: 6_000 + 10_000 + 2_000)).isEmpty)
        let lost = d.tick(now: 6_000 + 10_000 + 3_001)
        #expect(charged(lost).isEmpty && d.workers[w2] == nil)
        let done = d.received(from: w1again, .done(batchID: batch, committed: Array(1...10), failed: []), now: 20_000)
        #expect(sent(lost + done, to: w1again).sorted() == Array(11...20), "first in line again")
    }

    @Test func aWorkerCannotClaimAnotherWorkersJobsOrMoreThanItsCredit() {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 100, heartbeatInterval: 1000, liveness: 3))
        _ = d.batchOpened(batch, criteriaSHA256: sha, accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        _ = d.chunkStored(batch, jobs: jobs(1...30), rejected: 0, now: 0)
        #expect(sent(d.received(from: w1, .ready(name: "w1", credit: 10), now: 0), to: w1) == Array(1...10))
        // w2 claims w1's jobs and more than its credit: w1's stay w1's; beyond its credit is a violation.
        let claimed = d.received(from: w2, .ready(name: "w2", credit: 5, held: held(1...20)), now: 0)
        #expect(claimed.contains(.violation(kind: "held_beyond_credit", count: 5)))
        #expect(d.workers[w1]?.inFlight == 10 && d.workers[w2]?.inFlight == 5)
        #expect(d.workerLost(w1).contains(.setAside(count: 10)), "w1's leases were never w2's")
    }

    @Test func aWorkerThatHeartbeatsButNeverAnswersLosesItsLeasesAfterTheDeadline() {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 100, heartbeatInterval: 1000, liveness: 3, leaseTimeout: 10_000))
        _ = d.batchOpened(batch, criteriaSHA256: sha, accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        _ = d.chunkStored(batch, jobs: jobs(1...20), rejected: 0, now: 0)
        #expect(sent(d.received(from: w1, .ready(name: "stuck", credit: 10), now: 0), to: w1) == Array(1...10))
        _ = d.received(from: w2, .ready(name: "w2", credit: 10), now: 0)
        // w2 reports progress, which extends its leases; w1 only heartbeats.
        var t: Int64 = 0
        var expired: [Dispatcher.Action] = []
        while t < 12_000 {
            t += 500
            _ = d.received(from: w1, .heartbeat, now: t)
            if t % 4_000 == 0 { _ = d.received(from: w2, .done(batchID: batch, committed: [], failed: []), now: t) }
            _ = d.received(from: w2, .heartbeat, now: t)
            expired += d.tick(now: t)
        }
        #expect(expired.contains(.setAside(count: 10)), "the stalled worker's jobs go elsewhere, to be tested in isolation")
        #expect(expired.contains(.send(worker: w1, .disconnect)) && expired.contains(.violation(kind: "leases_expired", count: 10)))
        #expect(charged(expired).isEmpty && d.workers[w1] == nil && d.workers[w2] != nil)
    }

    @Test func creditIsBoundedByTheCoordinator() {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 10_000, heartbeatInterval: 1000, liveness: 3, maxCredit: 40))
        _ = d.batchOpened(batch, criteriaSHA256: sha, accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        _ = d.chunkStored(batch, jobs: jobs(1...1_000), rejected: 0, now: 0)
        let greedy = d.received(from: w1, .ready(name: "greedy", credit: UInt32.max), now: 0)
        #expect(greedy.contains(.violation(kind: "credit_above_maximum", count: 1)))
        #expect(sent(greedy, to: w1).count == 40 && d.workers[w1]?.credit == 40)
        let more = d.received(from: w1, .credit(UInt32.max - 1), now: 1)
        #expect(more.contains(.violation(kind: "credit_above_maximum", count: 1)) && sent(more, to: w1).isEmpty)
        // When it vanishes, at most 40 healthy jobs go back, and none is charged an attempt.
        let lost = d.workerLost(w1)
        #expect(lost.contains(.setAside(count: 40)) && charged(lost).isEmpty)
    }
}

/// A DONE counts on the peer's word only for its own leases; the store decides the rest.
@Suite struct DispatcherTrustTests {
    let batch = BatchID()
    let sha = [UInt8](repeating: 1, count: 32)
    let w1 = Array("w1".utf8), w2 = Array("w2".utf8), stranger = Array("x".utf8)

    func machine(maxAttempts: Int = 3) -> Dispatcher {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 1000, heartbeatInterval: 1000, liveness: 3, maxAttempts: maxAttempts))
        _ = d.batchOpened(batch, criteriaSHA256: sha, accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        _ = d.chunkStored(batch, jobs: (1...20).map { ($0, Array("{}".utf8)) }, rejected: 0, now: 0)
        _ = d.intakeClosed(batch)
        return d
    }

    @Test func claimsForJobsNeverLeasedAreCheckedAndCountForNothingWhenUnstored() {
        var d = machine()
        _ = d.received(from: w1, .ready(name: "w1", credit: 5), now: 0)  // w1 holds 1...5
        let actions = d.received(from: w1, .done(batchID: batch, committed: Array(1...20), failed: []), now: 1)
        #expect(actions.contains(.verifyDone(batch: batch, seqs: Array(6...20), worker: "w1")))
        #expect(d.progress(batch)?.done == 5, "only its own leases count on its word")
        let verdict = d.doneVerified(batch, claimed: 15, present: [], now: 2)
        #expect(verdict.contains(.violation(kind: "done_without_assessment", count: 15)))
        #expect(d.progress(batch)?.done == 5)
        #expect(!verdict.contains(.markCompleted(batch)))
        // A peer that never said READY: the same.
        let strangers = d.received(from: stranger, .done(batchID: batch, committed: [7], failed: [JobFailure(seq: 8, reason: "no")]), now: 3)
        #expect(strangers.contains(.verifyDone(batch: batch, seqs: [7], worker: "an unregistered worker")))
        #expect(strangers.contains(.violation(kind: "failure_from_unregistered_worker", count: 1)))
        #expect(d.progress(batch)?.done == 5)
    }

    @Test func aFailureCountsOnlyForTheReportersOwnLeaseAndIsRecordedByTheCoordinator() {
        var d = machine()
        _ = d.received(from: w1, .ready(name: "w1", credit: 5), now: 0)   // 1...5
        _ = d.received(from: w2, .ready(name: "w2", credit: 5), now: 0)   // 6...10
        let foreign = d.received(from: w2, .done(batchID: batch, committed: [], failed: [JobFailure(seq: 1, reason: "lie")]), now: 1)
        #expect(foreign.contains(.violation(kind: "failure_for_job_not_leased", count: 1)))
        #expect(!foreign.contains { if case .recordFailure = $0 { true } else { false } })
        let own = d.received(from: w1, .done(batchID: batch, committed: [], failed: [JobFailure(seq: 1, reason: "boom")]), now: 2)
        #expect(own.contains(.recordFailure(batch: batch, seq: 1, attempt: 1, worker: "w1", reason: "boom")))
    }

    @Test func aJobGivenUpButAssessedAfterAllCountsDone() {
        var d = machine(maxAttempts: 1)
        _ = d.received(from: w1, .ready(name: "w1", credit: 1), now: 0)
        // w1 is presumed dead holding job 1 alone: its only attempt is spent, it is given up.
        let lost = d.tick(now: 10_000)
        #expect(lost.filter { if case .deadLetter = $0 { true } else { false } }.count == 1)
        #expect(d.progress(batch)?.failed == 1)
        // It had committed it after all.
        _ = d.givenUpButAssessed(batch, seq: 1)
        #expect(d.progress(batch)?.failed == 0 && d.progress(batch)?.done == 1)
    }

    @Test func aBatchFoundIncompleteAtTheSealSendsItsMissingJobsAgainAndGivesUpOnALiar() {
        var d = machine(maxAttempts: 2)
        _ = d.received(from: w1, .ready(name: "w1", credit: 20), now: 0)
        let all = d.received(from: w1, .done(batchID: batch, committed: Array(1...20), failed: []), now: 1)
        #expect(all.contains(.markCompleted(batch)), "counted on its word: its own leases")
        // The seal finds 3 never written.
        let again = d.sealRefused(batch, assessed: 17, deadLetters: 0, missing: [4, 9, 15], now: 2)
        #expect(again.contains(.recordFailure(batch: batch, seq: 4, attempt: 1, worker: "unknown", reason: "reported done, but no assessment was stored")))
        #expect(again.contains { if case .load(batch, 0, _) = $0 { true } else { false } })
        #expect(d.progress(batch)?.done == 17)
        #expect(d.progress(batch)?.state == .running)
        // Sent again, one at a time (each spent an attempt), and claimed again without rows.
        var resent: [Int64] = []
        var actions = d.jobsLoaded(batch, jobs: [(4, []), (9, []), (15, [])], exhausted: true, through: 20, now: 3)
        var sent = actions.compactMap { if case .send(_, .jobs(let b)) = $0 { b.jobs } else { nil } }
        #expect(sent.allSatisfy { $0.count == 1 }, "a job that failed before travels alone")
        for job in sent.flatMap({ $0 }) {
            #expect(job.attempt == 1)
            resent.append(job.seq)
            actions = d.received(from: w1, .done(batchID: batch, committed: [job.seq], failed: []), now: 5)
            sent = []
        }
        #expect(resent == [4, 9, 15])
        #expect(actions.contains(.markCompleted(batch)))
        // Their last attempt: dead letters, and the batch can complete honestly.
        let last = d.sealRefused(batch, assessed: 17, deadLetters: 0, missing: [4, 9, 15], now: 6)
        #expect(last.filter { if case .deadLetter = $0 { true } else { false } }.count == 3)
        #expect(last.contains(.markCompleted(batch)))
        #expect(d.progress(batch)?.failed == 3)
    }
}

@Suite struct DispatcherRecoveryTests {
    let batch = BatchID()
    let w1 = Array("w1".utf8), w2 = Array("w2".utf8)

    func bundles(_ actions: [Dispatcher.Action]) -> [JobBundle] {
        actions.compactMap { if case .send(_, .jobs(let b)) = $0 { return b } else { return nil } }
    }

    @Test func aJobWhoseWorkerDiesEveryTimeIsFoundByHalvingThenDeadLettered() {
        var d = Dispatcher(configuration: .init(bundleSize: 16, pendingWindow: 100, heartbeatInterval: 100, liveness: 3, maxAttempts: 3))
        _ = d.batchOpened(batch, criteriaSHA256: [], accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        _ = d.chunkStored(batch, jobs: (1...16).map { ($0, []) }, rejected: 0, now: 0)
        _ = d.intakeClosed(batch)
        // Job 13 kills every worker that is sent it; the others are healthy.
        var actions = d.received(from: w1, .ready(name: "w1", credit: 16), now: 0)
        var now: Int64 = 0
        var workersStarted = 1
        var poisonCompany: [Int] = []
        var charges: [Int64] = []
        var deadLetters: [(seq: Int64, attempts: Int)] = []
        for _ in 0..<100 {
            guard let (worker, bundle) = actions.compactMap({ if case .send(let w, .jobs(let b)) = $0 { (w, b) } else { nil } }).first else { break }
            if bundle.jobs.contains(where: { $0.seq == 13 }) {
                poisonCompany.append(bundle.jobs.count)
                now += 1_000
                actions = d.tick(now: now)  // it died: silent past its liveness
                workersStarted += 1
                actions += d.received(from: Array("w\(workersStarted)".utf8), .ready(name: "w\(workersStarted)", credit: 16), now: now)
            } else {
                actions = d.received(from: worker, .done(batchID: batch, committed: bundle.jobs.map(\.seq), failed: []), now: now)
            }
            for action in actions {
                if case .recordFailure(_, let seq, _, _, _) = action { charges.append(seq) }
                if case .deadLetter(_, let seq, let attempts, _) = action { deadLetters.append((seq, attempts)) }
            }
            if actions.contains(.markCompleted(batch)) { break }
        }
        // Lost with 16, then with 8, 4, 2 (none charged), then alone three times (charged).
        #expect(poisonCompany == [16, 8, 4, 2, 1, 1, 1])
        #expect(charges == [13, 13, 13], "only the job that was alone when its worker died pays")
        #expect(deadLetters.count == 1 && deadLetters.first?.seq == 13 && deadLetters.first?.attempts == 3)
        #expect(d.progress(batch)?.done == 15)
        #expect(d.progress(batch)?.failed == 1)
        d.completionRecorded(batch)
        #expect(d.progress(batch)?.state == .completed)
    }

    @Test func theIsolatingWorkerHoldsNothingElse() {
        let w3 = Array("w3".utf8)
        var d = Dispatcher(configuration: .init(bundleSize: 4, pendingWindow: 100, heartbeatInterval: 100, liveness: 3))
        _ = d.batchOpened(batch, criteriaSHA256: [], accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        _ = d.chunkStored(batch, jobs: (1...40).map { ($0, []) }, rejected: 0, now: 0)
        _ = d.received(from: w1, .ready(name: "w1", credit: 8), now: 0)   // 1...8
        _ = d.received(from: w2, .ready(name: "w2", credit: 8), now: 0)   // 9...16
        _ = d.received(from: w3, .ready(name: "w3", credit: 8), now: 0)   // 17...24
        // w1 dies holding 8: they are set aside; w2 (holding least, the first of equals) is
        // chosen to test them and is sent nothing until it has drained.
        let lost = d.workerLost(w1) + d.dispatch(now: 1)
        #expect(lost.contains(.setAside(count: 8)))
        #expect(d.isolator == w2)
        let drained = d.received(from: w2, .done(batchID: batch, committed: Array(9...12), failed: []), now: 2)
        #expect(bundles(drained).isEmpty, "still holds 13...16: nothing more until it holds nothing")
        let fresh = bundles(d.received(from: w3, .done(batchID: batch, committed: Array(17...20), failed: []), now: 3))
        #expect(fresh.map(\.jobs.count) == [4] && fresh.allSatisfy { !$0.jobs.contains { $0.seq <= 8 } }, "w3 gets fresh work only")
        let group = bundles(d.received(from: w2, .done(batchID: batch, committed: Array(13...16), failed: []), now: 4))
        #expect(group.map { $0.jobs.map(\.seq) } == [[1, 2, 3, 4]], "a group of at most half of the 8")
        #expect(d.workers[w2]?.inFlight == 4 && d.workers[w2]?.isolating == true)
        // While it tests them, fresh work goes to the others only.
        let more = d.received(from: w3, .done(batchID: batch, committed: Array(21...24), failed: []), now: 5)
        #expect(more.allSatisfy { if case .send(let w, .jobs) = $0 { w != w2 } else { true } })
        let next = bundles(d.received(from: w2, .done(batchID: batch, committed: [1, 2, 3, 4], failed: []), now: 6))
        #expect(next.map { $0.jobs.map(\.seq) } == [[5, 6, 7, 8]])
        // The last group done, it takes fresh work again.
        let after = d.received(from: w2, .done(batchID: batch, committed: [5, 6, 7, 8], failed: []), now: 7)
        #expect(d.isolator == nil && !bundles(after).isEmpty)
    }

    /// Workers killed at random, over and over, while they hold jobs: no healthy job is ever
    /// given up, and every job is done exactly once.
    @Test func workersKilledAtRandomNeverCostAHealthyJobItsAttempts() {
        var rng = SplitMix64(seed: 7)
        var d = Dispatcher(configuration: .init(bundleSize: 32, pendingWindow: 20_000, heartbeatInterval: 100, liveness: 3, maxAttempts: 3))
        _ = d.batchOpened(batch, criteriaSHA256: [], accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        _ = d.chunkStored(batch, jobs: (1...10_000).map { ($0, []) }, rejected: 0, now: 0)
        _ = d.intakeClosed(batch)
        var outstanding: [[UInt8]: [JobBundle]] = [:]
        var started = 0
        func take(_ actions: [Dispatcher.Action]) -> Bool {
            var completed = false
            for action in actions {
                if case .send(let w, .jobs(let b)) = action { outstanding[w, default: []].append(b) }
                if case .deadLetter = action { Issue.record("a healthy job was given up: \(action)") }
                if case .markCompleted = action { completed = true }
            }
            return completed
        }
        var now: Int64 = 0
        var done = false
        for _ in 0..<3 { started += 1; done = take(d.received(from: Array("w\(started)".utf8), .ready(name: "w\(started)", credit: 128), now: now)) || done }
        var steps = 0
        var kills = 0
        while !done && steps < 200_000 {
            steps += 1
            now += 1
            let live = outstanding.keys.filter { d.workers[$0] != nil }.sorted { $0.lexicographicallyPrecedes($1) }
            guard let worker = live.randomElement(using: &rng) else { break }
            if rng.next() % 6 == 0 {
                // Killed, whatever it holds; a new worker takes its place.
                outstanding[worker] = nil
                kills += 1
                done = take(d.workerLost(worker) + d.dispatch(now: now)) || done
                started += 1
                done = take(d.received(from: Array("w\(started)".utf8), .ready(name: "w\(started)", credit: 128), now: now)) || done
            } else if var queue = outstanding[worker], !queue.isEmpty {
                let bundle = queue.removeFirst()
                outstanding[worker] = queue
                done = take(d.received(from: worker, .done(batchID: batch, committed: bundle.jobs.map(\.seq), failed: []), now: now)) || done
            }
        }
        #expect(done, "the batch completes")
        #expect(kills > 50, "workers were killed holding jobs (\(kills) times)")
        #expect(d.progress(batch)?.done == 10_000 && d.progress(batch)?.failed == 0)
    }

    @Test func aGracefulDisconnectDoesNotCostAnAttempt() {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 100))
        _ = d.batchOpened(batch, criteriaSHA256: [], accepted: 0, rejected: 0, done: 0, intakeClosed: false)
        _ = d.chunkStored(batch, jobs: [(1, [])], rejected: 0, now: 0)
        _ = d.received(from: w1, .ready(name: "w1", credit: 10), now: 0)
        let actions = d.received(from: w1, .disconnect, now: 1)
        #expect(!actions.contains { if case .recordFailure = $0 { return true } else { return false } })
        #expect(bundles(d.received(from: w2, .ready(name: "w2", credit: 10), now: 2)).first?.jobs.first?.attempt == 0)
    }

    @Test func countsThatFallShortAreReconciledWithTheStore() {
        var d = Dispatcher(configuration: .init(bundleSize: 10, pendingWindow: 100))
        // A restarted coordinator counted 8 assessed; 2 more were committed before it loaded.
        _ = d.batchOpened(batch, criteriaSHA256: [], accepted: 10, rejected: 0, done: 8, intakeClosed: true)
        let actions = d.jobsLoaded(batch, jobs: [], exhausted: true, through: 10, now: 0)
        #expect(actions.contains(.reconcile(batch)))
        let after = d.reconciled(batch, assessed: 10, deadLetters: 0, now: 1)
        #expect(after.contains(.markCompleted(batch)))
    }
}

