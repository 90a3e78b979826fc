import AuditStore
import Assessment
import LibPQ
import Logging
import Wire
import ZeroMQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Work for the coordinator's database thread, and what it answers.
enum StoreRequest: Sendable {
    case open(client: [UInt8], organisation: String, batchID: BatchID, name: String, packs: [PackSpec], source: String)
    case chunk(client: [UInt8], organisation: String, batchID: BatchID, number: UInt64, records: [SubmittedRecord])
    case close(client: [UInt8], organisation: String, batchID: BatchID)
    case status(client: [UInt8], organisation: String, batchID: BatchID)
    case retry(client: [UInt8], organisation: String, batchID: BatchID)
    case cancel(client: [UInt8], organisation: String, batchID: BatchID)
    case load(batchID: BatchID, afterSeq: Int64, limit: Int)
    case recordFailure(BatchID, seq: Int64, attempt: Int, worker: String, reason: String)
    case deadLetter(BatchID, seq: Int64, attempts: Int, reason: String)
    case reconcile(BatchID)
}

enum StoreReply: Sendable {
    case opened(client: [UInt8], BatchRecord)
    case chunkStored(client: [UInt8], batchID: BatchID, number: UInt64, jobs: [(seq: Int64, record: [UInt8])], rejections: [Rejection], fresh: Bool)
    case closed(client: [UInt8], batchID: BatchID)
    case status(client: [UInt8], BatchProgress?)
    case loaded(batchID: BatchID, jobs: [(seq: Int64, record: [UInt8])], exhausted: Bool, through: Int64)
    case loadFailed(batchID: BatchID)
    case reconciled(BatchID, assessed: Int64, deadLetters: Int64)
    case completed(BatchID)
    case retried(client: [UInt8], BatchRecord, count: Int)
    case cancelled(client: [UInt8], BatchID)
    case unfinished([BatchRecord], done: [String: Int64], dead: [String: Int64])
    case failed(client: [UInt8], code: ClientReply.ErrorCode, message: String)
}

/// The thread that owns the coordinator's PostgreSQL connection. It validates and stores
/// chunks, reads jobs back, and reconnects with backoff when the database goes away.
final class StoreThread: @unchecked Sendable {
    static let dieAfterClose = ProcessInfo.processInfo.environment["OVERSIGHT_FAULT_DIE_AFTER_CLOSE"] != nil
    let requests = Mailbox<StoreRequest>()
    private let replies: Mailbox<StoreReply>
    private let conninfo: String
    private let logger: Logger
    private var store: AuditStore?
    private let limits: IntakeLimits
    private var batchSeqs: [BatchID: Int64] = [:]
    /// The organisation of every batch this thread has seen, so that no client reaches another's.
    private var owners: [BatchID: String] = [:]

    init(conninfo: String, limits: IntakeLimits, replies: Mailbox<StoreReply>, logger: Logger) {
        self.conninfo = conninfo
        self.limits = limits
        self.replies = replies
        self.logger = logger
    }

    /// Connects, migrates, registers the built-in packs and reports unfinished batches.
    /// Advisory lock that makes one coordinator per database the active one ("ovs-lead").
    static let leadershipKey: Int64 = 0x6F76_732D_6C65_6164

    /// Waits until this coordinator holds the leadership lock (a standby waits here while another
    /// coordinator is active), or until `shouldStop` says to give up. Returns false if it gave up.
    func becomeActive(shouldStop: () -> Bool) throws -> Bool {
        let store = try AuditStore(conninfo: conninfo, applicationName: "oversight-coordinator")
        var announced = false
        while true {
            let held = try store.connection.query("SELECT pg_try_advisory_lock(\(Self.leadershipKey))").bool(0, 0) ?? false
            if held { break }
            if !announced {
                logger.notice("standby: another coordinator is active on this database; waiting to take over")
                announced = true
            }
            if shouldStop() { return false }
            Thread.sleep(forTimeInterval: 0.25)
        }
        if announced { logger.notice("the active coordinator is gone: taking over") }
        self.store = store
        return true
    }

    func prepare() throws {
        guard let store else { throw StoreError(message: "prepare() before becomeActive()") }
        try Migrator.migrate(store.connection)
        try store.register(CriteriaSet.builtIn)
        let unfinished = try store.unfinishedBatches()
        var done: [String: Int64] = [:]
        var dead: [String: Int64] = [:]
        for batch in unfinished {
            done[batch.batchID] = try store.assessedCount(batchID: batch.batchID)
            dead[batch.batchID] = try store.activeDeadLetterCount(batchID: batch.batchID)
        }
        replies.post(.unfinished(unfinished, done: done, dead: dead))
    }

    func run() {
        while let request = requests.take(timeout: 3600) {
            handle(request)
        }
    }

    private func connected() throws -> AuditStore {
        if let store, store.connection.isHealthy { return store }
        store = nil
        var delay = 0.1
        while true {
            do {
                let fresh = try AuditStore(conninfo: conninfo, applicationName: "oversight-coordinator")
                // The leadership lock went with the old session: take it again, or step down.
                let held = try fresh.connection.query("SELECT pg_try_advisory_lock(\(Self.leadershipKey))").bool(0, 0) ?? false
                guard held else {
                    logger.critical("another coordinator became active while the database was unreachable; stepping down (restart this one to make it a standby)")
                    exit(75)
                }
                store = fresh
                logger.info("reconnected to PostgreSQL")
                return fresh
            } catch {
                logger.warning("PostgreSQL unavailable, retrying", metadata: ["error": "\(error)", "retry_in_s": "\(delay)"])
                Thread.sleep(forTimeInterval: delay * Double.random(in: 0.5...1.5))
                delay = min(delay * 2, 5)
            }
        }
    }

    private func handle(_ request: StoreRequest) {
        do {
            try perform(request)
        } catch let error as PQError where error.isTransient {
            logger.warning("database error, will reconnect", metadata: ["error": "\(error)"])
            store = nil
            retryOrFail(request, error: error)
        } catch {
            retryOrFail(request, error: error)
        }
    }

    private func retryOrFail(_ request: StoreRequest, error: any Error) {
        if let gap = error as? ChunkOutOfOrder, case .chunk(let client, _, _, _, _) = request {
            replies.post(.failed(client: client, code: .outOfOrder, message: gap.description))
            return
        }
        switch request {
        case .open(let client, _, _, _, _, _), .chunk(let client, _, _, _, _), .close(let client, _, _), .status(let client, _, _),
             .retry(let client, _, _), .cancel(let client, _, _):
            let transient = (error as? PQError)?.isTransient ?? false
            replies.post(.failed(client: client, code: transient ? .storeUnavailable : .badRequest, message: "\(error)"))
        case .load(let batchID, _, _):
            logger.error("could not load jobs", metadata: ["batch": "\(batchID)", "error": "\(error)"])
            Thread.sleep(forTimeInterval: 0.5)
            replies.post(.loadFailed(batchID: batchID))
        case .recordFailure, .deadLetter, .reconcile:
            // Bookkeeping that must not be lost: retry until the database takes it.
            logger.error("could not write to the database, retrying", metadata: ["error": "\(error)"])
            Thread.sleep(forTimeInterval: 0.5)
            requests.post(request)
        }
    }

    private func perform(_ request: StoreRequest) throws {
        let store = try connected()
        switch request {
        case .open(let client, let organisation, let batchID, let name, let specs, let source):
            var packs: [CriteriaPack] = []
            for spec in specs {
                switch spec {
                case .builtIn(let packID):
                    guard let pack = CriteriaPack.builtIn(id: packID) else {
                        let known = CriteriaPack.builtIn.map(\.id).joined(separator: ", ")
                        replies.post(.failed(client: client, code: .unknownPack, message: "unknown criteria pack \"\(packID)\"; built-in packs: \(known)"))
                        return
                    }
                    packs.append(pack)
                case .document(let text):
                    do { packs.append(try CriteriaPack(json: text)) } catch {
                        replies.post(.failed(client: client, code: .unknownPack, message: "criteria pack does not compile: \(error)"))
                        return
                    }
                }
            }
            guard Set(packs.map(\.id)).count == packs.count else {
                replies.post(.failed(client: client, code: .badRequest, message: "a pack id appears twice in the criteria set"))
                return
            }
            let set = CriteriaSet(packs)
            try store.register(set)
            let batch = try store.openBatch(id: batchID.description, name: name, source: source, organisation: organisation, criteriaSHA256: set.sha256)
            guard batch.organisation == organisation else {
                replies.post(.failed(client: client, code: .badRequest, message: "batch id \(batchID) is taken; submit without --batch-id to get a fresh one"))
                return
            }
            owners[batchID] = organisation
            guard batch.criteriaSHA256 == set.sha256 else {
                replies.post(.failed(client: client, code: .badRequest, message: "batch \(batchID) exists with another criteria set; resume it with the same --pack options"))
                return
            }
            guard !batch.intakeClosed else {
                replies.post(.failed(client: client, code: .closed, message: "batch \(batchID) is already closed; submit a new batch"))
                return
            }
            batchSeqs[batchID] = batch.nextSeq
            replies.post(.opened(client: client, batch))
        case .chunk(let client, let organisation, let batchID, let number, let records):
            if batchSeqs[batchID] == nil || owners[batchID] != organisation {
                guard let batch = try owned(batchID, by: organisation, store) else {
                    replies.post(.failed(client: client, code: .unknownBatch, message: "unknown batch \(batchID): open it first"))
                    return
                }
                batchSeqs[batchID] = batch.nextSeq
            }
            if let refusal = limits.refusal(chunk: records, acceptedSoFar: batchSeqs[batchID]! - 1) {
                replies.post(.failed(client: client, code: .badRequest, message: refusal))
                return
            }
            var seq = batchSeqs[batchID]!
            var accepted: [AcceptedRecord] = []
            var rejected: [RejectedRecord] = []
            accepted.reserveCapacity(records.count)
            for record in records {
                switch record.body {
                case .json(let bytes):
                    if let violation = RecordCheck.validate(bytes, limits: limits.record) {
                        rejected.append(RejectedRecord(line: record.line, field: violation.field, message: violation.message, raw: bytes))
                    } else {
                        accepted.append(AcceptedRecord(seq: seq, line: record.line, record: bytes))
                        seq += 1
                    }
                case .malformed(let raw, let field, let message):
                    rejected.append(RejectedRecord(line: record.line, field: field, message: message, raw: raw))
                }
            }
            let fresh = try store.storeChunk(batchID: batchID.description, number: Int64(number), accepted: accepted, rejected: rejected)
            if fresh {
                batchSeqs[batchID] = seq
            } else if let batch = try store.batch(id: batchID.description) {
                batchSeqs[batchID] = batch.nextSeq
            }
            replies.post(.chunkStored(client: client, batchID: batchID, number: number,
                                      jobs: fresh ? accepted.map { ($0.seq, $0.record) } : [],
                                      rejections: fresh ? rejected.map { Rejection(line: $0.line, field: $0.field, message: $0.message) } : [],
                                      fresh: fresh))
        case .close(let client, let organisation, let batchID):
            guard try owned(batchID, by: organisation, store) != nil else {
                replies.post(.failed(client: client, code: .unknownBatch, message: "no batch \(batchID)")); return
            }
            try store.closeIntake(batchID: batchID.description)
            // OVERSIGHT_FAULT_DIE_AFTER_CLOSE: fault injection for the test suite only — the
            // coordinator dies with the CLOSE committed and unanswered.
            if Self.dieAfterClose { kill(getpid(), SIGKILL) }
            batchSeqs[batchID] = nil
            replies.post(.closed(client: client, batchID: batchID))
        case .status(let client, let organisation, let batchID):
            guard let batch = try owned(batchID, by: organisation, store) else {
                replies.post(.status(client: client, nil)); return
            }
            let done = try store.assessedCount(batchID: batch.batchID)
            let state: BatchProgress.State = batch.cancelled ? .cancelled : batch.completed ? .completed : batch.intakeClosed ? .running : .receiving
            replies.post(.status(client: client, BatchProgress(batchID: batchID, state: state, accepted: batch.accepted,
                                                               rejected: batch.rejected, done: done, failed: 0)))
        case .retry(let client, let organisation, let batchID):
            guard try owned(batchID, by: organisation, store) != nil else {
                replies.post(.failed(client: client, code: .unknownBatch, message: "no batch \(batchID) in this database")); return
            }
            let count = try store.retryDeadLetters(batchID: batchID.description)
            guard let batch = try store.batch(id: batchID.description) else { return }
            logger.info("dead letters queued again", metadata: ["batch": "\(batchID)", "jobs": "\(count)"])
            replies.post(.retried(client: client, batch, count: count))
        case .cancel(let client, let organisation, let batchID):
            guard try owned(batchID, by: organisation, store) != nil else {
                replies.post(.failed(client: client, code: .unknownBatch, message: "no batch \(batchID) in this database")); return
            }
            try store.cancel(batchID: batchID.description)
            logger.info("batch cancelled", metadata: ["batch": "\(batchID)"])
            replies.post(.cancelled(client: client, batchID))
        case .load(let batchID, let afterSeq, let limit):
            let page = try store.pendingJobs(batchID: batchID.description, afterSeq: afterSeq, limit: limit)
            replies.post(.loaded(batchID: batchID, jobs: page.jobs, exhausted: page.exhausted, through: page.scannedThrough))
        case .recordFailure(let batchID, let seq, let attempt, let worker, let reason):
            try store.recordFailure(batchID: batchID.description, seq: seq, attempt: attempt, worker: worker, reason: reason)
        case .reconcile(let batchID):
            replies.post(.reconciled(batchID, assessed: try store.assessedCount(batchID: batchID.description),
                                     deadLetters: try store.activeDeadLetterCount(batchID: batchID.description)))
        case .deadLetter(let batchID, let seq, let attempts, let reason):
            try store.deadLetter(DeadLetter(batchID: batchID.description, seq: seq, attempts: attempts, lastError: reason))
        }
    }

    /// The batch if it exists and belongs to `organisation`; another organisation's batch is
    /// reported exactly as a missing one.
    private func owned(_ batchID: BatchID, by organisation: String, _ store: AuditStore) throws -> BatchRecord? {
        guard let batch = try store.batch(id: batchID.description), batch.organisation == organisation else { return nil }
        owners[batchID] = organisation
        return batch
    }
}
