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

/// Work for the coordinator's database thread, and what it answers.
enum StoreRequest: Sendable {
    case open(client: [UInt8], organisation: String, batchID: BatchID, name: String, packs: [PackSpec], source: String, options: BatchOptions)
    case chunk(client: [UInt8], organisation: String, batchID: BatchID, number: UInt64, records: [SubmittedRecord])
    case close(client: [UInt8], organisation: String, batchID: BatchID, chunks: UInt64)
    case status(client: [UInt8], organisation: String, batchID: BatchID)
    case retry(client: [UInt8], organisation: String, batchID: BatchID)
    case cancel(client: [UInt8], organisation: String, batchID: BatchID)
    case load(batchID: BatchID, afterSeq: Int64, limit: Int)
    case recordFailure(BatchID, seq: Int64, attempt: Int, worker: String, reason: String)
    case deadLetter(BatchID, seq: Int64, attempts: Int, reason: String)
    case reconcile(BatchID)
    /// Count the DONE's seqs that were not leased to its sender only if they are assessed.
    case verifyDone(BatchID, seqs: [Int64], worker: String)
    /// Answer this client's STATUS from memory once its earlier requests are answered, so
    /// that replies keep the order of requests.
    case inOrder(client: [UInt8], organisation: String, batchID: BatchID, error: String?)
}

extension StoreRequest {
    /// The client this request came from, if a client sent it.
    var client: [UInt8]? {
        switch self {
        case .open(let c, _, _, _, _, _, _), .chunk(let c, _, _, _, _), .close(let c, _, _, _), .status(let c, _, _),
             .retry(let c, _, _), .cancel(let c, _, _), .inOrder(let c, _, _, _):
            return c
        case .load, .recordFailure, .deadLetter, .reconcile, .verifyDone:
            return nil
        }
    }

    var batchID: BatchID {
        switch self {
        case .open(_, _, let b, _, _, _, _), .chunk(_, _, let b, _, _), .close(_, _, let b, _), .status(_, _, let b), .retry(_, _, let b),
             .cancel(_, _, let b), .inOrder(_, _, let b, _), .load(let b, _, _), .recordFailure(let b, _, _, _, _),
             .deadLetter(let b, _, _, _), .reconcile(let b), .verifyDone(let b, _, _):
            return b
        }
    }
}

enum StoreReply: Sendable {
    case opened(client: [UInt8], BatchRecord)
    case chunkStored(client: [UInt8], batchID: BatchID, number: UInt64, jobs: [(seq: Int64, record: [UInt8])], rejections: [Rejection], fresh: Bool)
    /// `ended`: the batch's progress from the store, when it had already completed or been
    /// cancelled (a CLOSE repeated after the coordinator forgot the batch).
    case closed(client: [UInt8], batchID: BatchID, ended: BatchProgress?)
    case status(client: [UInt8], BatchProgress?)
    case loaded(batchID: BatchID, jobs: [(seq: Int64, record: [UInt8])], exhausted: Bool, through: Int64)
    case loadFailed(batchID: BatchID)
    case reconciled(BatchID, accepted: Int64, assessed: Int64, deadLetters: Int64)
    case completed(BatchID)
    /// The seal thread found the batch incomplete and did not seal it.
    case sealRefused(BatchID, assessed: Int64, deadLetters: Int64, missing: [Int64])
    case doneVerified(BatchID, claimed: Int, present: [Int64])
    /// A job the dispatcher gave up has an assessment: it is done, not failed.
    case givenUpButAssessed(BatchID, seq: Int64)
    case inOrder(client: [UInt8], organisation: String, batchID: BatchID, error: String?)
    case retried(client: [UInt8], BatchRecord, count: Int)
    case cancelled(client: [UInt8], BatchID)
    case unfinished([BatchRecord], done: [BatchID: Int64], dead: [BatchID: Int64])
    /// This coordinator's leadership session holds the lock (posted by `LeadershipThread`).
    case leadershipConfirmed
    case failed(client: [UInt8], code: ClientReply.ErrorCode, batchID: BatchID?, chunk: UInt64?, message: String)

    /// The client this reply answers, if it answers one.
    var client: [UInt8]? {
        switch self {
        case .opened(let c, _), .chunkStored(let c, _, _, _, _, _), .closed(let c, _, _), .status(let c, _), .retried(let c, _, _),
             .cancelled(let c, _), .failed(let c, _, _, _, _), .inOrder(let c, _, _, _):
            return c
        case .loaded, .loadFailed, .reconciled, .completed, .sealRefused, .doneVerified, .givenUpButAssessed, .unfinished, .leadershipConfirmed:
            return nil
        }
    }
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
    private var everConnected = false
    private let limits: IntakeLimits
    private var batchSeqs: [BatchID: Int64] = [:]
    /// The organisation of every batch this thread has seen, so that no client reaches another's.
    private var owners: [BatchID: String] = [:]
    /// Evidence packs by SHA-256 (hex), the built-in one and those read from the store, to
    /// check records' inferred facts against.
    private var evidencePacks: [String: EvidencePack] = [EvidencePack.builtIn.sha256Hex: .builtIn]

    init(conninfo: String, limits: IntakeLimits, replies: Mailbox<StoreReply>, logger: Logger) {
        self.conninfo = conninfo
        self.limits = limits
        self.replies = replies
        self.logger = logger
    }

    /// Migrates, registers the built-in packs and reports unfinished batches.
    func prepare() throws {
        let store = try connected()
        try store.migrate()
        try store.register(CriteriaSet.builtIn)
        let unfinished = try store.unfinishedBatches()
        var done: [BatchID: Int64] = [:]
        var dead: [BatchID: Int64] = [:]
        for batch in unfinished {
            done[batch.batchID] = try store.assessedCount(batchID: batch.batchID)
            dead[batch.batchID] = try store.activeDeadLetterCount(batchID: batch.batchID)
        }
        replies.post(.unfinished(unfinished, done: done, dead: dead))
    }

    /// Until the mailbox is closed and every request queued before that is carried out (on
    /// SIGTERM the coordinator drains what is queued here before it exits).
    func run() {
        // OVERSIGHT_FAULT_END_STORE_THREAD: test suite only — the thread's loop returns after its
        // first request, as a bug would make it; the supervisor must take the process down.
        if ProcessInfo.processInfo.environment["OVERSIGHT_FAULT_END_STORE_THREAD"] != nil {
            if case .message(let first) = requests.take(until: 3600) { handle(first) }
            return
        }
        // Exported at 0 from the start (metrics are set up by now, if asked for).
        _ = Counter(label: "oversight_store_reconnects_total")
        requests.forEach(idleSeconds: IdlePeriod.seconds, idle: { logIdle("store", logger) }) { handle($0) }
    }

    private func connected() throws -> AuditStore {
        if let store, store.isHealthy { return store }
        store = nil
        var delay = 0.1
        while true {
            do {
                // The leadership lock is on a session of its own (`LeadershipThread`).
                let fresh = try AuditStore(conninfo: conninfo, applicationName: "oversight-coordinator")
                if everConnected { Counter(label: "oversight_store_reconnects_total").increment() }
                everConnected = true
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

    /// Seconds a client's request is retried through database outages before the client is
    /// told to retry itself (ERROR 4).
    static let clientRetrySeconds: Double = 20

    private func handle(_ request: StoreRequest) {
        var delay = 0.1
        let started = Date()
        while true {
            do {
                try perform(request)
                return
            } catch where AuditStore.isTransient(error) {
                // Never a refusal: reconnect and do it again (every request is idempotent:
                // a chunk stored before the connection broke is found stored).
                logger.warning("database error, will reconnect and retry", metadata: ["error": "\(error)"])
                store = nil
                if request.client != nil && Date().timeIntervalSince(started) > Self.clientRetrySeconds {
                    fail(request, code: .storeUnavailable,
                         message: "the coordinator's database is unavailable; nothing was lost: send the request again (`submit` and `status` do so by themselves)")
                    return
                }
                Thread.sleep(forTimeInterval: delay * Double.random(in: 0.5...1.5))
                delay = min(delay * 2, 2)
            } catch {
                retryOrFail(request, error: error)
                return
            }
        }
    }

    private func fail(_ request: StoreRequest, code: ClientReply.ErrorCode, message: String) {
        guard let client = request.client else { return }
        var chunk: UInt64?
        if case .chunk(_, _, _, let number, _) = request { chunk = number }
        replies.post(.failed(client: client, code: code, batchID: request.batchID, chunk: chunk, message: message))
    }

    private func retryOrFail(_ request: StoreRequest, error: any Error) {
        switch error {
        case let gap as ChunkOutOfOrder: fail(request, code: .outOfOrder, message: gap.description); return
        case let closed as BatchClosed: fail(request, code: .closed, message: closed.description); return
        case let refusal as BatchRefusal: fail(request, code: .badRequest, message: refusal.description); return
        default: break
        }
        switch request {
        case .open, .chunk, .close, .status, .retry, .cancel, .inOrder:
            // The full error goes to the log; the client hears what happened, never SQL.
            logger.error("a client's request failed", metadata: ["error": "\(error)"])
            let said = AuditStore.refusal(error).map { "the coordinator's database refused the request: \($0)" }
                ?? "the coordinator could not carry out the request: \(error)"
            fail(request, code: .badRequest, message: said)
        case .load(let batchID, _, _):
            logger.error("could not load jobs", metadata: ["batch": "\(batchID)", "error": "\(error)"])
            Thread.sleep(forTimeInterval: 0.5)
            replies.post(.loadFailed(batchID: batchID))
        case .recordFailure, .deadLetter, .reconcile, .verifyDone:
            // Bookkeeping that must not be lost: retry until the database takes it.
            logger.error("could not write to the database, retrying", metadata: ["error": "\(error)"])
            Thread.sleep(forTimeInterval: 0.5)
            requests.post(request)
        }
    }

    /// For a record with inferred facts: the first that the pack it names, run on the record's
    /// own text, does not find (`EvidenceCheck`). Packs not yet read are looked up in the store.
    private func evidenceViolation(_ bytes: [UInt8], _ store: AuditStore) throws -> SchemaViolation? {
        guard Self.mentionsInferred(bytes), let record = try? JSONParser.parse(bytes) else { return nil }
        return try EvidenceCheck.violation(in: record) { hex in
            if let known = evidencePacks[hex] { return known }
            guard let stored = try store.evidencePack(sha256Hex: hex) else { return nil }
            evidencePacks[hex] = stored
            return stored
        }
    }

    private static let inferredKey = Array(#""inferred""#.utf8)

    /// Whether the text may hold an `inferred` key: it holds `"inferred"`, or a `\u` escape
    /// (which could spell the key otherwise). Most records have neither and skip the parse.
    static func mentionsInferred(_ bytes: [UInt8]) -> Bool {
        let key = inferredKey, n = key.count
        guard bytes.count >= n else { return false }
        return bytes.withUnsafeBufferPointer { b in
            var i = 0
            while i <= b.count - n {
                if b[i] == UInt8(ascii: "\\") && b[i + 1] == UInt8(ascii: "u") { return true }
                if b[i] == key[0] && b[i + 1] == key[1] {
                    var j = 2
                    while j < n && b[i + j] == key[j] { j += 1 }
                    if j == n { return true }
                }
                i += 1
            }
            return false
        }
    }

    private func perform(_ request: StoreRequest) throws {
        let store = try connected()
        switch request {
        case .open(let client, let organisation, let batchID, let name, let specs, let source, let options):
            let asOf: CalendarDate
            if options.asOf.isEmpty {
                asOf = CalendarDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
            } else if let date = CalendarDate(options.asOf) {
                asOf = date
            } else {
                replies.post(.failed(client: client, code: .badRequest, batchID: batchID, chunk: nil, message: "as-of date \"\(options.asOf)\" is not a day; write it as YYYY-MM-DD"))
                return
            }
            if let link = options.reassessmentOf, try owned(link, by: organisation, store) == nil {
                replies.post(.failed(client: client, code: .unknownBatch, batchID: batchID, chunk: nil, message: "unknown batch \(link) to assess again"))
                return
            }
            var packs: [CriteriaPack] = []
            var evidence: [EvidencePack] = []
            for spec in specs {
                switch spec {
                case .builtIn(let packID):
                    guard let pack = CriteriaPack.builtIn(id: packID) else {
                        let known = CriteriaPack.builtIn.map(\.id).joined(separator: ", ")
                        replies.post(.failed(client: client, code: .unknownPack, batchID: batchID, chunk: nil, message: "unknown criteria pack \"\(packID)\"; built-in packs: \(known)"))
                        return
                    }
                    packs.append(pack)
                case .document(let text):
                    do { packs.append(try CriteriaPack(json: text)) } catch {
                        replies.post(.failed(client: client, code: .unknownPack, batchID: batchID, chunk: nil, message: "criteria pack does not compile: \(error)"))
                        return
                    }
                case .evidence(let text):
                    do { evidence.append(try EvidencePack(json: text)) } catch {
                        replies.post(.failed(client: client, code: .unknownPack, batchID: batchID, chunk: nil, message: "evidence pack does not compile: \(error)"))
                        return
                    }
                }
            }
            guard !packs.isEmpty else {
                replies.post(.failed(client: client, code: .badRequest, batchID: batchID, chunk: nil, message: "OPEN names no criteria pack; a batch is assessed with at least one"))
                return
            }
            for pack in evidence {
                try store.register(pack)
                evidencePacks[pack.sha256Hex] = pack
            }
            guard Set(packs.map(\.id)).count == packs.count else {
                replies.post(.failed(client: client, code: .badRequest, batchID: batchID, chunk: nil, message: "a pack id appears twice in the criteria set"))
                return
            }
            let set = CriteriaSet(packs)
            try store.register(set)
            let batch = try store.openBatch(id: batchID, name: name, source: source, organisation: organisation,
                                            criteriaSHA256: set.sha256, asOf: asOf, reassessmentOf: options.reassessmentOf)
            guard batch.organisation == organisation else {
                replies.post(.failed(client: client, code: .badRequest, batchID: batchID, chunk: nil, message: "batch id \(batchID) is taken; submit without --batch-id to get a fresh one"))
                return
            }
            owners[batchID] = organisation
            guard batch.criteriaSHA256 == set.sha256 else {
                replies.post(.failed(client: client, code: .badRequest, batchID: batchID, chunk: nil, message: "batch \(batchID) exists with another criteria set; resume it with the same --pack options"))
                return
            }
            guard !batch.intakeClosed else {
                replies.post(.failed(client: client, code: .closed, batchID: batchID, chunk: nil, message: "batch \(batchID) is already closed; submit a new batch"))
                return
            }
            batchSeqs[batchID] = batch.nextSeq
            replies.post(.opened(client: client, batch))
        case .chunk(let client, let organisation, let batchID, let number, let records):
            if batchSeqs[batchID] == nil || owners[batchID] != organisation {
                guard let batch = try owned(batchID, by: organisation, store) else {
                    replies.post(.failed(client: client, code: .unknownBatch, batchID: batchID, chunk: number, message: "unknown batch \(batchID): open it first"))
                    return
                }
                batchSeqs[batchID] = batch.nextSeq
            }
            if let refusal = limits.refusal(chunk: records, acceptedSoFar: batchSeqs[batchID]! - 1) {
                replies.post(.failed(client: client, code: .badRequest, batchID: batchID, chunk: number, message: refusal))
                return
            }
            var seq = batchSeqs[batchID]!
            var accepted: [AcceptedRecord] = []
            var rejected: [RejectedRecord] = []
            accepted.reserveCapacity(records.count)
            for record in records {
                switch record.body {
                case .json(let bytes):
                    if let violation = try RecordCheck.validate(bytes, limits: limits.record) ?? evidenceViolation(bytes, store) {
                        rejected.append(RejectedRecord(line: record.line, field: violation.field, message: violation.message, raw: bytes))
                    } else {
                        accepted.append(AcceptedRecord(seq: seq, line: record.line, record: bytes))
                        seq += 1
                    }
                case .malformed(let raw, let field, let message):
                    rejected.append(RejectedRecord(line: record.line, field: field, message: message, raw: raw))
                case .oversized(let prefix, let bytes, let sha256):
                    rejected.append(RejectedRecord(line: record.line, field: "", raw: prefix, bytes: bytes, sha256: sha256,
                                                   message: "record of \(bytes) bytes exceeds the largest line a client sends (\(Envelope.maximumRecordSize) bytes); its first \(prefix.count) bytes, length and SHA-256 are kept"))
                }
            }
            let digested = records.map { r in let part = r.digestPart; return (line: r.line, kind: part.kind, bytes: part.bytes) }
            let fresh = try store.storeChunk(batchID: batchID, number: Int64(number), digested: digested,
                                             accepted: accepted, rejected: rejected)
            if fresh {
                batchSeqs[batchID] = seq
            } else if let batch = try store.batch(id: batchID) {
                batchSeqs[batchID] = batch.nextSeq
                // Stored before (a resend, or a commit whose answer the broken connection lost):
                // the dispatcher counts and reads back what the store holds.
                requests.post(.reconcile(batchID))
            }
            replies.post(.chunkStored(client: client, batchID: batchID, number: number,
                                      jobs: fresh ? accepted.map { ($0.seq, $0.record) } : [],
                                      rejections: fresh ? rejected.map { Rejection(line: $0.line, field: $0.field, message: $0.message) } : [],
                                      fresh: fresh))
        case .close(let client, let organisation, let batchID, let chunks):
            guard let batch = try owned(batchID, by: organisation, store) else {
                replies.post(.failed(client: client, code: .unknownBatch, batchID: batchID, chunk: nil, message: "no batch \(batchID)")); return
            }
            try store.closeIntake(batchID: batchID, chunks: Int64(chunks))
            var ended: BatchProgress?
            if batch.completed || batch.cancelled {
                ended = BatchProgress(batchID: batchID, state: batch.cancelled ? .cancelled : .completed, accepted: batch.accepted,
                                      rejected: batch.rejected, done: try store.assessedCount(batchID: batchID),
                                      failed: try store.activeDeadLetterCount(batchID: batchID))
            }
            // OVERSIGHT_FAULT_DIE_AFTER_CLOSE: fault injection for the test suite only — the
            // coordinator dies with the CLOSE committed and unanswered.
            if Self.dieAfterClose { kill(getpid(), SIGKILL) }
            batchSeqs[batchID] = nil
            replies.post(.closed(client: client, batchID: batchID, ended: ended))
        case .status(let client, let organisation, let batchID):
            guard let batch = try owned(batchID, by: organisation, store) else {
                replies.post(.status(client: client, nil)); return
            }
            let done = try store.assessedCount(batchID: batch.batchID)
            let failed = try store.activeDeadLetterCount(batchID: batch.batchID)
            let state: BatchProgress.State = batch.cancelled ? .cancelled : batch.completed ? .completed : batch.intakeClosed ? .running : .receiving
            replies.post(.status(client: client, BatchProgress(batchID: batchID, state: state, accepted: batch.accepted,
                                                               rejected: batch.rejected, done: done, failed: failed)))
        case .inOrder(let client, let organisation, let batchID, let error):
            replies.post(.inOrder(client: client, organisation: organisation, batchID: batchID, error: error))
        case .retry(let client, let organisation, let batchID):
            guard try owned(batchID, by: organisation, store) != nil else {
                replies.post(.failed(client: client, code: .unknownBatch, batchID: batchID, chunk: nil, message: "no batch \(batchID) in this database")); return
            }
            let count = try store.retryDeadLetters(batchID: batchID)
            guard let batch = try store.batch(id: batchID) else {
                replies.post(.failed(client: client, code: .unknownBatch, batchID: batchID, chunk: nil, message: "no batch \(batchID) in this database")); return
            }
            logger.info("dead letters queued again", metadata: ["batch": "\(batchID)", "jobs": "\(count)"])
            replies.post(.retried(client: client, batch, count: count))
        case .cancel(let client, let organisation, let batchID):
            guard try owned(batchID, by: organisation, store) != nil else {
                replies.post(.failed(client: client, code: .unknownBatch, batchID: batchID, chunk: nil, message: "no batch \(batchID) in this database")); return
            }
            try store.cancel(batchID: batchID)
            logger.info("batch cancelled", metadata: ["batch": "\(batchID)"])
            replies.post(.cancelled(client: client, batchID))
        case .load(let batchID, let afterSeq, let limit):
            let page = try store.pendingJobs(batchID: batchID, afterSeq: afterSeq, limit: limit)
            replies.post(.loaded(batchID: batchID, jobs: page.jobs, exhausted: page.exhausted, through: page.scannedThrough))
        case .recordFailure(let batchID, let seq, let attempt, let worker, let reason):
            try store.recordFailure(batchID: batchID, seq: seq, attempt: attempt, worker: worker, reason: reason)
        case .reconcile(let batchID):
            let accepted = try store.batch(id: batchID)?.accepted ?? 0
            replies.post(.reconciled(batchID, accepted: accepted, assessed: try store.assessedCount(batchID: batchID),
                                     deadLetters: try store.activeDeadLetterCount(batchID: batchID)))
        case .verifyDone(let batchID, let seqs, let worker):
            let present = try store.assessedAmong(batchID: batchID, seqs: seqs)
            if present.count < seqs.count {
                logger.warning("a DONE named jobs that have no assessment; ignored", metadata: [
                    "batch": "\(batchID)", "worker": "\(worker)", "claimed": "\(seqs.count)", "assessed": "\(present.count)"])
            }
            replies.post(.doneVerified(batchID, claimed: seqs.count, present: present))
        case .deadLetter(let batchID, let seq, let attempts, let reason):
            if try !store.deadLetter(DeadLetter(batchID: batchID, seq: seq, attempts: attempts, lastError: reason)) {
                logger.info("a job given up turned out assessed (its worker, presumed dead, had committed it); counted done",
                            metadata: ["batch": "\(batchID)", "seq": "\(seq)"])
                replies.post(.givenUpButAssessed(batchID, seq: seq))
            }
        }
    }

    /// The batch if it exists and belongs to `organisation`; another organisation's batch is
    /// reported exactly as a missing one.
    private func owned(_ batchID: BatchID, by organisation: String, _ store: AuditStore) throws -> BatchRecord? {
        guard let batch = try store.batch(id: batchID), batch.organisation == organisation else { return nil }
        owners[batchID] = organisation
        return batch
    }
}
