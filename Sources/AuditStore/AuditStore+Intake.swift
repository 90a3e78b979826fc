public import Identifiers
public import LibPQ
public import Assessment

/// One accepted record ready for `jobs`.
public struct AcceptedRecord: Sendable {
    public let seq: Int64
    public let line: Int64
    public let record: [UInt8]
    public init(seq: Int64, line: Int64, record: [UInt8]) { self.seq = seq; self.line = line; self.record = record }
}

/// One refused record ready for `rejected_records`.
public struct RejectedRecord: Sendable {
    public let line: Int64
    public let field: String
    public let message: String
    /// The line as submitted, or its first bytes when it is larger than `keptRawBytes`.
    public let raw: [UInt8]
    /// Length and SHA-256 of the whole line.
    public let bytes: UInt64
    public let sha256: [UInt8]

    /// The most of a rejected line kept byte for byte.
    public static let keptRawBytes = 64 * 1024

    public init(line: Int64, field: String, message: String, raw: [UInt8]) {
        self.init(line: line, field: field, raw: Array(raw.prefix(Self.keptRawBytes)), bytes: UInt64(raw.count),
                  sha256: AuditHash.sha256(raw), message: message)
    }

    /// A line known only by its first bytes, length and hash (too large to send whole).
    public init(line: Int64, field: String, raw: [UInt8], bytes: UInt64, sha256: [UInt8], message: String) {
        self.line = line; self.field = field; self.message = message
        self.raw = Array(raw.prefix(Self.keptRawBytes)); self.bytes = bytes; self.sha256 = sha256
    }
}

/// What the store knows of a batch.
public struct BatchRecord: Sendable, Hashable {
    public let batchID: BatchID
    public let name: String
    public let organisation: String
    public let criteriaSHA256: [UInt8]
    public let acknowledgedChunks: Int64
    public let nextSeq: Int64
    public let accepted: Int64
    public let rejected: Int64
    public let intakeClosed: Bool
    public let completed: Bool
    public let cancelled: Bool
    /// The digest of every line stored so far (see `InputDigest`).
    public let input: InputDigest
}

extension AuditStore {
    /// Creates the batch, or returns it unchanged if it exists (a resumed submission).
    /// `asOf`: the day its records are assessed as of; `reassessmentOf`: the batch whose records
    /// it assesses again. A resumed batch keeps the date and link it was opened with.
    public func openBatch(id: BatchID, name: String, source: String, organisation: String, criteriaSHA256: [UInt8],
                          asOf: CalendarDate, reassessmentOf: BatchID? = nil) throws -> BatchRecord {
        try connection.query("""
            INSERT INTO oversight.batches (batch_id, name, source, organisation, criteria_sha256, as_of, reassessment_of)
            VALUES (\(id)::uuid, \(name), \(source), \(organisation), \(criteriaSHA256), \(asOf.description)::date, \(reassessmentOf)::uuid)
            ON CONFLICT (batch_id) DO NOTHING
            """)
        guard let batch = try batch(id: id) else { throw StoreError(message: "batch \(id) vanished after insert") }
        return batch
    }

    public func batch(id: BatchID) throws(PQError) -> BatchRecord? {
        batchRecords(try connection.query("""
            SELECT \(unescaped: Self.batchColumns) FROM oversight.batches WHERE batch_id = \(id)::uuid
            """)).first
    }

    /// Batches whose work is not finished: the coordinator resumes them at start.
    public func unfinishedBatches() throws(PQError) -> [BatchRecord] {
        batchRecords(try connection.query("""
            SELECT \(unescaped: Self.batchColumns) FROM oversight.batches
            WHERE completed_at IS NULL AND cancelled_at IS NULL ORDER BY created_at
            """))
    }

    static let batchColumns: StaticString = """
        batch_id::text, name, organisation, criteria_sha256, acknowledged_chunks, next_seq, accepted, rejected,
        intake_closed_at IS NOT NULL, completed_at IS NOT NULL, cancelled_at IS NOT NULL, input_lines, input_sha256
        """

    private func batchRecords(_ rows: PGResult) -> [BatchRecord] {
        (0..<rows.rowCount).map { i in
            BatchRecord(batchID: rows.batchID(i, 0)!, name: rows.string(i, 1)!, organisation: rows.string(i, 2)!,
                        criteriaSHA256: rows.bytes(i, 3)!, acknowledgedChunks: rows.int64(i, 4)!, nextSeq: rows.int64(i, 5)!,
                        accepted: rows.int64(i, 6)!, rejected: rows.int64(i, 7)!,
                        intakeClosed: rows.bool(i, 8)!, completed: rows.bool(i, 9)!, cancelled: rows.bool(i, 10)!,
                        input: InputDigest(lastLine: rows.int64(i, 11)!, sha256: rows.bytes(i, 12)!))
        }
    }

    /// Stores chunk `number` atomically: its accepted records (one COPY), its rejections, the
    /// batch's intake cursor and the digest of its input, extended by every line of `digested`
    /// (the chunk as submitted). Returns false, writing nothing, if the chunk was stored before.
    public func storeChunk(batchID: BatchID, number: Int64, digested lines: [(line: Int64, kind: UInt8, bytes: [UInt8])] = [],
                           accepted: [AcceptedRecord], rejected: [RejectedRecord]) throws -> Bool {
        try connection.transaction {
            let cursor = try connection.query("""
                SELECT acknowledged_chunks, intake_closed_at IS NOT NULL, cancelled_at IS NOT NULL, input_lines, input_sha256
                FROM oversight.batches WHERE batch_id = \(batchID)::uuid FOR UPDATE
                """)
            guard cursor.rowCount == 1, let acknowledged = cursor.int64(0, 0) else {
                throw StoreError(message: "batch \(batchID) does not exist")
            }
            // Checked under the batch's row lock, so a CLOSE or CANCEL committed a moment ago counts.
            if cursor.bool(0, 2) == true { throw BatchClosed(batchID: batchID, reason: .cancelled) }
            if cursor.bool(0, 1) == true { throw BatchClosed(batchID: batchID, reason: .intakeClosed) }
            if number <= acknowledged { return false }
            guard number == acknowledged + 1 else {
                throw ChunkOutOfOrder(number: number, expected: acknowledged + 1)
            }
            if !accepted.isEmpty {
                try connection.copyIn("COPY oversight.jobs (batch_id, seq, line, record) FROM STDIN") { w in
                    let id = Array(batchID.description.utf8)
                    for r in accepted {
                        w.add(utf8: id); w.add(r.seq); w.add(r.line); w.add(utf8: r.record)
                        try w.endRow()
                    }
                }
            }
            if !rejected.isEmpty {
                try connection.copyIn("COPY oversight.rejected_records (batch_id, line, field, message, raw, raw_bytes, raw_sha256) FROM STDIN") { w in
                    let id = Array(batchID.description.utf8)
                    for r in rejected {
                        w.add(utf8: id); w.add(r.line); w.add(r.field); w.add(r.message)
                        w.add(bytea: r.raw); w.add(Int64(r.bytes)); w.add(bytea: r.sha256)
                        try w.endRow()
                    }
                }
            }
            var digest = InputDigest(lastLine: cursor.int64(0, 3) ?? 0, sha256: cursor.bytes(0, 4) ?? InputDigest.empty.sha256)
            for line in lines { digest.append(line: line.line, kind: line.kind, bytes: line.bytes) }
            let lastLine = max(digest.lastLine, accepted.last?.line ?? 0, rejected.map(\.line).max() ?? 0)
            let nextSeq = (accepted.last?.seq ?? 0) + 1
            try connection.query("""
                UPDATE oversight.batches
                SET acknowledged_chunks = \(number),
                    next_seq = GREATEST(next_seq, \(nextSeq)),
                    accepted = accepted + \(accepted.count),
                    rejected = rejected + \(rejected.count),
                    input_lines = \(lastLine),
                    input_sha256 = \(digest.sha256)
                WHERE batch_id = \(batchID)::uuid
                """)
            return true
        }
    }

    /// Closes the batch's intake once `chunks` (the client's count) are all stored. A CLOSE
    /// repeated after it succeeded changes nothing; a batch that received no line at all, one
    /// that was cancelled, and a count that is not the stored one are refused.
    public func closeIntake(batchID: BatchID, chunks: Int64) throws {
        try connection.transaction {
            let state = try connection.query("""
                SELECT acknowledged_chunks, input_lines, intake_closed_at IS NOT NULL, cancelled_at IS NOT NULL
                FROM oversight.batches WHERE batch_id = \(batchID)::uuid FOR UPDATE
                """)
            guard state.rowCount == 1 else { throw StoreError(message: "batch \(batchID) does not exist") }
            if state.bool(0, 2) == true { return }
            if state.bool(0, 3) == true { throw BatchClosed(batchID: batchID, reason: .cancelled) }
            let stored = state.int64(0, 0) ?? 0
            guard chunks == stored else {
                throw ChunkOutOfOrder(closing: chunks, stored: stored)
            }
            guard (state.int64(0, 1) ?? 0) > 0 else {
                throw BatchRefusal("batch \(batchID) received no records, so it is not closed: send records, or cancel it")
            }
            try connection.query("UPDATE oversight.batches SET intake_closed_at = now() WHERE batch_id = \(batchID)::uuid")
        }
    }

    /// Records the batch completed (the caller knows every job was done) unless `retry` has
    /// queued some of its jobs again since: a dead letter queued again whose job is neither
    /// assessed nor given up anew. False, changing nothing, then. (It looks at dead letters
    /// only: counting a million assessments took a second.)
    public func markCompletedIfDone(batchID: BatchID) throws(PQError) -> Bool {
        try connection.query("""
            UPDATE oversight.batches SET completed_at = COALESCE(completed_at, now())
            WHERE batch_id = \(batchID)::uuid
              AND NOT EXISTS (
                  SELECT 1 FROM oversight.dead_letters d
                  WHERE d.batch_id = \(batchID)::uuid AND d.retried_at IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = d.batch_id AND a.seq = d.seq)
                    AND NOT EXISTS (SELECT 1 FROM oversight.dead_letters again
                                    WHERE again.batch_id = d.batch_id AND again.seq = d.seq AND again.retried_at IS NULL))
            """).affectedRows == 1
    }

    /// Up to `limit` jobs of a batch after `afterSeq` that have no assessment yet, in order, and
    /// the last seq examined. Two index range scans rather than an anti-join, so the plan stays
    /// right however stale the table statistics are during a large intake.
    public func pendingJobs(batchID: BatchID, afterSeq: Int64, limit: Int) throws(PQError)
        -> (jobs: [(seq: Int64, record: [UInt8])], scannedThrough: Int64, exhausted: Bool) {
        var jobs: [(seq: Int64, record: [UInt8])] = []
        var cursor = afterSeq
        while jobs.count < limit {
            let want = limit - jobs.count
            // A closed range: a batch's seqs are dense, so this is the next `want` jobs, and the
            // scan stays bounded whatever the planner thinks of a table that grew a million rows
            // since it last looked (an open `seq > cursor` read the rest of the batch each time).
            let upper = cursor + Int64(want)
            let rows = try connection.query("""
                SELECT seq, record FROM oversight.jobs
                WHERE batch_id = \(batchID)::uuid AND seq > \(cursor) AND seq <= \(upper) ORDER BY seq
                """)
            // Fewer than asked: the end of what is stored now, unless seqs go on after a gap.
            let short = rows.rowCount < want
            let more = short ? try connection.query("""
                SELECT EXISTS (SELECT 1 FROM oversight.jobs WHERE batch_id = \(batchID)::uuid AND seq > \(upper))
                """).bool(0, 0) ?? false : true
            if rows.rowCount > 0 {
                let last = rows.int64(rows.rowCount - 1, 0)!
                // Assessed jobs, and jobs given up (an active dead letter), are not pending.
                let done = try connection.query("""
                    SELECT seq FROM oversight.assessments
                    WHERE batch_id = \(batchID)::uuid AND seq > \(cursor) AND seq <= \(last)
                    UNION ALL
                    SELECT seq FROM oversight.dead_letters
                    WHERE batch_id = \(batchID)::uuid AND seq > \(cursor) AND seq <= \(last) AND retried_at IS NULL
                    """)
                var assessed = Set<Int64>(minimumCapacity: done.rowCount)
                for i in 0..<done.rowCount { assessed.insert(done.int64(i, 0)!) }
                for i in 0..<rows.rowCount {
                    let seq = rows.int64(i, 0)!
                    if !assessed.contains(seq) { jobs.append((seq, rows.textBytes(i, 1)!)) }
                }
                cursor = last
            }
            // Only a gap may be skipped; seqs not stored yet must be read when they are.
            if short && more { cursor = upper }
            if !more { return (jobs, cursor, true) }
        }
        return (jobs, cursor, false)
    }

    /// Those of `seqs` that have an assessment in the batch: what a DONE may count for jobs
    /// that were not leased to its sender.
    public func assessedAmong(batchID: BatchID, seqs: [Int64]) throws(PQError) -> [Int64] {
        let rows = try connection.query("""
            SELECT seq FROM oversight.assessments
            WHERE batch_id = \(batchID)::uuid AND seq = ANY(\(PGInt64Array(seqs))::bigint[]) ORDER BY seq
            """)
        return (0..<rows.rowCount).map { rows.int64($0, 0)! }
    }

    /// Number of assessments stored for a batch.
    public func assessedCount(batchID: BatchID) throws(PQError) -> Int64 {
        try connection.query("SELECT count(*) FROM oversight.assessments WHERE batch_id = \(batchID)::uuid").int64(0, 0) ?? 0
    }
}

/// A job given up after its last attempt.
public struct DeadLetter: Sendable, Hashable {
    public let batchID: BatchID
    public let seq: Int64
    public let attempts: Int
    public let lastError: String
    public init(batchID: BatchID, seq: Int64, attempts: Int, lastError: String) {
        self.batchID = batchID; self.seq = seq; self.attempts = attempts; self.lastError = lastError
    }
}

extension AuditStore {
    /// Records a dead letter (idempotent while one is active for the job), unless the job has
    /// an assessment after all (a worker presumed dead committed it): a give-up is checked
    /// against the store like any claim. Returns false when the job turned out assessed.
    @discardableResult
    public func deadLetter(_ letter: DeadLetter) throws(PQError) -> Bool {
        let rows = try connection.query("""
            WITH assessed AS (SELECT 1 FROM oversight.assessments WHERE batch_id = \(letter.batchID)::uuid AND seq = \(letter.seq)),
                 given_up AS (
                     INSERT INTO oversight.dead_letters (batch_id, seq, attempts, last_error)
                     SELECT \(letter.batchID)::uuid, \(letter.seq), \(letter.attempts), \(letter.lastError)
                     WHERE NOT EXISTS (SELECT 1 FROM assessed)
                     ON CONFLICT (batch_id, seq) WHERE retried_at IS NULL DO NOTHING
                     RETURNING 1)
            SELECT EXISTS (SELECT 1 FROM assessed)
            """)
        return rows.bool(0, 0) != true
    }

    /// Records one failed attempt: the coordinator is the one writer of job_failures (a failure a
    /// worker reported in DONE, a worker that died holding the job, a DONE that lied). One row
    /// per (batch, seq, attempt): writing the same attempt again changes nothing.
    public func recordFailure(batchID: BatchID, seq: Int64, attempt: Int, worker: String, reason: String) throws(PQError) {
        try connection.query("""
            INSERT INTO oversight.job_failures (batch_id, seq, attempt, worker, reason)
            VALUES (\(batchID)::uuid, \(seq), \(attempt), \(worker), \(reason))
            ON CONFLICT (batch_id, seq, attempt) DO NOTHING
            """)
    }

    public func activeDeadLetterCount(batchID: BatchID) throws(PQError) -> Int64 {
        // Open: not queued again, and the job never assessed after all.
        try connection.query("""
            SELECT count(*) FROM oversight.dead_letters d WHERE d.batch_id = \(batchID)::uuid AND d.retried_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = d.batch_id AND a.seq = d.seq)
            """).int64(0, 0) ?? 0
    }
}

extension AuditStore {
    /// Marks the batch's active dead letters as retried and reopens the batch (if it had
    /// completed) for them alone; returns how many. A cancelled batch, or one with no open dead
    /// letter, is refused and changes nothing: a completed batch without dead letters is final.
    public func retryDeadLetters(batchID: BatchID) throws -> Int {
        try connection.transaction {
            let state = try connection.query("""
                SELECT cancelled_at IS NOT NULL, completed_at IS NOT NULL FROM oversight.batches WHERE batch_id = \(batchID)::uuid FOR UPDATE
                """)
            guard state.rowCount == 1 else { throw StoreError(message: "batch \(batchID) does not exist") }
            if state.bool(0, 0) == true { throw BatchRefusal("batch \(batchID) was cancelled; its dead letters stay as they are (submit the records again as a new batch)") }
            let count = try connection.query("""
                UPDATE oversight.dead_letters SET retried_at = clock_timestamp()
                WHERE batch_id = \(batchID)::uuid AND retried_at IS NULL
                """).affectedRows
            guard count > 0 else {
                throw BatchRefusal(state.bool(0, 1) == true
                    ? "batch \(batchID) is completed and has no dead letters to retry; it is final"
                    : "batch \(batchID) has no dead letters to retry")
            }
            try connection.query("UPDATE oversight.batches SET completed_at = NULL WHERE batch_id = \(batchID)::uuid")
            return count
        }
    }

    /// Stops a batch that is still receiving or running. A completed batch is final: refused.
    public func cancel(batchID: BatchID) throws {
        let changed = try connection.query("""
            UPDATE oversight.batches SET cancelled_at = COALESCE(cancelled_at, now())
            WHERE batch_id = \(batchID)::uuid AND completed_at IS NULL
            """).affectedRows
        if changed == 0 {
            throw BatchRefusal("batch \(batchID) is completed and sealed; a completed batch is final and cannot be cancelled")
        }
        // A cancelled batch is never summarised: the facets its workers wrote are dropped (and
        // those of bundles committed after this, when the coordinator next starts).
        try connection.query("DELETE FROM oversight.pending_facets WHERE batch_id = \(batchID)::uuid")
    }

    /// Drops the facets workers wrote for cancelled batches (never summarised); returns how many.
    @discardableResult
    public func discardPendingFacetsOfCancelledBatches() throws -> Int {
        try connection.query("""
            DELETE FROM oversight.pending_facets p USING oversight.batches b
            WHERE b.batch_id = p.batch_id AND b.cancelled_at IS NOT NULL
            """).affectedRows
    }
}

/// A request the batch's state does not allow; the message says why and what to do instead.
public struct BatchRefusal: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A chunk for a batch whose intake is closed or that was cancelled: nothing is stored.
public struct BatchClosed: Error, CustomStringConvertible, Sendable {
    public enum Reason: Sendable { case intakeClosed, cancelled }
    public let batchID: BatchID
    public let reason: Reason
    public var description: String {
        switch reason {
        case .intakeClosed: "batch \(batchID) is closed: its intake ended with CLOSE, so it takes no more records; submit them as a new batch"
        case .cancelled: "batch \(batchID) was cancelled: it takes no more records; submit them as a new batch"
        }
    }
}

/// A chunk came before the one the batch expects (chunks sent to a coordinator that died were
/// lost): the client should open the batch again and resume after the last stored chunk.
public struct ChunkOutOfOrder: Error, CustomStringConvertible, Sendable {
    public let number: Int64
    public let expected: Int64
    /// A CLOSE that counted other chunks than the store holds.
    public var closing = false

    public init(number: Int64, expected: Int64) { self.number = number; self.expected = expected }
    public init(closing chunks: Int64, stored: Int64) { number = chunks; expected = stored; closing = true }

    public var description: String {
        closing ? "CLOSE counts \(number) chunks but \(expected) are stored; open the batch again and resume after the last stored chunk"
            : "chunk \(number) arrived before chunk \(expected); open the batch again and resume"
    }
}
