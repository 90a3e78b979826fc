import Identifiers
import AuditStore
import Assessment
import Logging
import Metrics
import Wire
import ZeroMQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Seals the batches the dispatcher finds complete, each on this thread's own PostgreSQL
/// connection, then records them completed. Sealing a million-row batch reads its hashes for
/// seconds; on the store thread it held up every other batch's intake and read-back meanwhile.
///
/// Sealed first, then completed: a coordinator that dies in between finds the batch unfinished
/// when it starts again, completes it, and sealing again changes nothing (the same rows give the
/// same root). A batch is recorded completed only if the database agrees that every accepted
/// job is assessed or given up: a `retry` that reached the store thread while the seal was being
/// made keeps the batch running (it completes, and is sealed again, later).
///
/// While a batch runs, the loop asks this thread every `SealFold.defaultPage` commits to fold what is
/// assessed of it into its Merkle tree ahead of time (`AuditStore.fold`), so that the seal at
/// the end reads only the last of its rows: a million-row batch was sealed seconds after its
/// last commit when the seal read every row twice.
final class SealThread: @unchecked Sendable {
    enum Request: Sendable {
        /// The dispatcher found the batch complete.
        case seal(BatchID)
        /// The batch has had another `SealFold.defaultPage` jobs committed.
        case fold(BatchID)
    }
    let requests = Mailbox<Request>()
    /// The batches folded ahead, by this thread only.
    private var folds: [BatchID: SealFold] = [:]
    private let replies: Mailbox<StoreReply>
    private let conninfo: String
    private let sealKey: SealKey
    private let logger: Logger
    private var store: AuditStore?
    /// OVERSIGHT_FAULT_DIE_AFTER_SEAL: fault injection for the test suite only — the coordinator
    /// dies with a batch sealed and not yet recorded completed.
    static let dieAfterSeal = ProcessInfo.processInfo.environment["OVERSIGHT_FAULT_DIE_AFTER_SEAL"] != nil
    /// OVERSIGHT_FAULT_SEAL_DELAY_MS: test suite only — every seal takes this much longer, as
    /// a very large batch's would.
    static let sealDelay = Double(ProcessInfo.processInfo.environment["OVERSIGHT_FAULT_SEAL_DELAY_MS"] ?? "").map { $0 / 1000 }

    init(conninfo: String, sealKey: SealKey, replies: Mailbox<StoreReply>, logger: Logger) {
        self.conninfo = conninfo
        self.sealKey = sealKey
        self.replies = replies
        self.logger = logger
    }

    func run() {
        // A seal goes before any fold waiting: the fold would only delay it.
        requests.forEach(idleSeconds: IdlePeriod.seconds, idle: { logIdle("seal", logger) },
                         choosing: { waiting in waiting.firstIndex { if case .seal = $0 { true } else { false } } ?? 0 }) { request in
            switch request {
            case .seal(let batchID): complete(batchID)
            case .fold(let batchID): foldAhead(batchID)
            }
        }
    }

    /// Folds what is assessed of a running batch; a failure costs only speed (the seal reads
    /// more), and the next fold starts afresh from the first seq under a new folder.
    private func foldAhead(_ batchID: BatchID) {
        var fold = folds[batchID] ?? SealFold()
        do {
            let store = try connected()
            let folded = try store.fold(&fold, batchID: batchID)
            folds[batchID] = fold
            if folded > 0 { logger.debug("batch folded ahead of its seal", metadata: ["batch": "\(batchID)", "through": "\(fold.through)"]) }
        } catch {
            store = nil
            folds[batchID] = nil
            logger.warning("could not fold the batch ahead of its seal; it is sealed from all its rows", metadata: ["batch": "\(batchID)", "error": "\(error)"])
        }
    }

    /// Retries until the database takes it: a completion must not be lost.
    private func complete(_ batchID: BatchID) {
        var delay = 0.1
        while true {
            do {
                let store = try connected()
                if let sealDelay = Self.sealDelay { Thread.sleep(forTimeInterval: sealDelay) }
                let started = ContinuousClock.now
                switch try store.seal(batchID: batchID, key: sealKey, fold: folds[batchID]) {
                case .sealed(let seal):
                    Metrics.Timer(label: "oversight_seal_seconds").record(duration: ContinuousClock.now - started)
                    Gauge(label: "oversight_last_seal_timestamp_seconds").record(Date().timeIntervalSince1970)
                    logger.info("batch sealed", metadata: ["batch": "\(batchID)", "seal": "\(seal)"])
                case .unchanged: break
                case .incomplete(let assessed, let dead, let missing, let intakeClosed):
                    // Never seal what is not all there: the dispatcher hears the store's counts
                    // and sends the missing jobs again.
                    logger.warning("batch not sealed: not every accepted job is assessed or given up", metadata: [
                        "batch": "\(batchID)", "assessed": "\(assessed)", "dead_lettered": "\(dead)",
                        "missing": "\(missing.count)", "first_missing": "\(missing.prefix(5).map(String.init).joined(separator: ","))",
                        "intake_closed": "\(intakeClosed)"])
                    replies.post(.sealRefused(batchID, assessed: assessed, deadLetters: dead, missing: missing))
                    return
                }
                folds[batchID] = nil
                if Self.dieAfterSeal { kill(getpid(), SIGKILL) }
                if try store.markCompletedIfDone(batchID: batchID) {
                    replies.post(.completed(batchID))
                    logger.info("batch completed", metadata: ["batch": "\(batchID)"])
                    summarise(batchID)
                } else {
                    logger.info("batch runs again (jobs were queued again while it was sealed); it completes later",
                                metadata: ["batch": "\(batchID)"])
                }
                return
            } catch {
                store = nil
                logger.error("could not seal or complete the batch, retrying", metadata: ["batch": "\(batchID)", "error": "\(error)"])
                Thread.sleep(forTimeInterval: delay * Double.random(in: 0.5...1.5))
                delay = min(delay * 2, 5)
            }
        }
    }

    /// Summaries run one at a time on a connection of their own, off the seal thread: a
    /// million-record batch takes minutes to summarise, and the next seal must not wait.
    private let summaries = DispatchQueue(label: "oversight.coordinator.summaries")
    /// The second step, listing (a minute for a million records), on a queue of its own, so
    /// that the counts of a batch completed meanwhile do not wait for it.
    private let listings = DispatchQueue(label: "oversight.coordinator.listings")

    /// The batch's facets for pages and lists, once per seal. A failure costs speed only (the
    /// readers fall back to the live views), so it is logged, not retried.
    private func summarise(_ batchID: BatchID) {
        let conninfo = self.conninfo, logger = self.logger
        summaries.async {
            let started = Date()
            do {
                let store = try AuditStore(conninfo: conninfo, applicationName: "oversight-coordinator-summary")
                let rows = try store.summariseCounts(batchID: batchID)
                logger.info("batch summarised", metadata: ["batch": "\(batchID)", "records": "\(rows)",
                                                           "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))"])
                self.listings.async {
                    let listing = Date()
                    do {
                        let store = try AuditStore(conninfo: conninfo, applicationName: "oversight-coordinator-listing")
                        let moved = try store.listRecords(batchID: batchID)
                        logger.info("batch records listed", metadata: ["batch": "\(batchID)", "facets_moved": "\(moved)",
                                                                       "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(listing)))"])
                    } catch {
                        logger.warning("could not list the batch's records; its record lists are read from the live views",
                                       metadata: ["batch": "\(batchID)", "error": "\(error)"])
                    }
                }
            } catch {
                logger.warning("could not summarise the batch; its pages are read from the live views", metadata: ["batch": "\(batchID)", "error": "\(error)"])
            }
        }
    }

    /// Summarises, one after another on the summaries' queue, every completed batch whose newest
    /// seal has none (a coordinator that died while summarising, or a schema upgrade that dropped
    /// summaries of an older shape, leaves such batches on the slower live views).
    func summariseStale() {
        let conninfo = self.conninfo, logger = self.logger
        summaries.async { [self] in
            do {
                let store = try AuditStore(conninfo: conninfo, applicationName: "oversight-coordinator-summary")
                try store.discardPendingFacetsOfCancelledBatches()
                try store.discardSealFoldsOfFinishedBatches()
                let stale = try store.batchesToSummarise()
                if !stale.isEmpty { logger.info("summarising completed batches that have no summary of their newest seal", metadata: ["batches": "\(stale.count)"]) }
                for batchID in stale { summarise(batchID) }
            } catch {
                logger.warning("could not look for batches to summarise; their pages are read from the live views", metadata: ["error": "\(error)"])
            }
        }
    }

    private func connected() throws -> AuditStore {
        if let store, store.isHealthy { return store }
        let fresh = try AuditStore(conninfo: conninfo, applicationName: "oversight-coordinator-seal")
        store = fresh
        return fresh
    }
}

/// An owner thread's note that it waited a whole idle period: trace, or notice when the test
/// suite shortened the period to watch the threads outlive it.
func logIdle(_ thread: String, _ logger: Logger) {
    logger.log(level: IdlePeriod.injected == nil ? .trace : .notice, "idle, still waiting for work", metadata: ["thread": "\(thread)"])
}
