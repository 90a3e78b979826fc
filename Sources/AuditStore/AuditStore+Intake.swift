public import LibPQ
import Assessment

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
    public let raw: [UInt8]
    public init(line: Int64, field: String, message: String, raw: [UInt8]) { self.line = line; self.field = field; self.message = message; self.raw = raw }
}

/// What the store knows of a batch.
public struct BatchRecord: Sendable, Hashable {
    public let batchID: String
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
}

extension AuditStore {
    /// Creates the batch, or returns it unchanged if it exists (a resumed submission).
    public func openBatch(id: String, name: String, source: String, organisation: String, criteriaSHA256: [UInt8]) throws -> BatchRecord {
        try connection.query("""
            INSERT INTO oversight.batches (batch_id, name, source, organisation, criteria_sha256)
            VALUES (\(id)::uuid, \(name), \(source), \(organisation), \(criteriaSHA256))
            ON CONFLICT (batch_id) DO NOTHING
            """)
        guard let batch = try batch(id: id) else { throw StoreError(message: "batch \(id) vanished after insert") }
        return batch
    }

    public func batch(id: String) throws(PQError) -> BatchRecord? {
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
        intake_closed_at IS NOT NULL, completed_at IS NOT NULL, cancelled_at IS NOT NULL
        """

    private func batchRecords(_ rows: PGResult) -> [BatchRecord] {
        (0..<rows.rowCount).map { i in
            BatchRecord(batchID: rows.string(i, 0)!, name: rows.string(i, 1)!, organisation: rows.string(i, 2)!,
                        criteriaSHA256: rows.bytes(i, 3)!, acknowledgedChunks: rows.int64(i, 4)!, nextSeq: rows.int64(i, 5)!,
                        accepted: rows.int64(i, 6)!, rejected: rows.int64(i, 7)!,
                        intakeClosed: rows.bool(i, 8)!, completed: rows.bool(i, 9)!, cancelled: rows.bool(i, 10)!)
        }
    }

    /// Stores chunk `number` atomically: its accepted records (one COPY), its rejections, and the
    /// batch's intake cursor. Returns false, writing nothing, if the chunk was stored before.
    public func storeChunk(batchID: String, number: Int64, accepted: [AcceptedRecord], rejected: [RejectedRecord]) throws -> Bool {
        try connection.transaction {
            let cursor = try connection.query("""
                SELECT acknowledged_chunks FROM oversight.batches WHERE batch_id = \(batchID)::uuid FOR UPDATE
                """)
            guard cursor.rowCount == 1, let acknowledged = cursor.int64(0, 0) else {
                throw StoreError(message: "batch \(batchID) does not exist")
            }
            if number <= acknowledged { return false }
            guard number == acknowledged + 1 else {
                throw ChunkOutOfOrder(number: number, expected: acknowledged + 1)
            }
            if !accepted.isEmpty {
                try connection.copyIn("COPY oversight.jobs (batch_id, seq, line, record) FROM STDIN") { w in
                    let id = Array(batchID.utf8)
                    for r in accepted {
                        w.add(utf8: id); w.add(r.seq); w.add(r.line); w.add(utf8: r.record)
                        try w.endRow()
                    }
                }
            }
            if !rejected.isEmpty {
                try connection.copyIn("COPY oversight.rejected_records (batch_id, line, field, message, raw) FROM STDIN") { w in
                    let id = Array(batchID.utf8)
                    for r in rejected {
                        w.add(utf8: id); w.add(r.line); w.add(r.field); w.add(r.message)
                        w.add(utf8: Self.storableText(r.raw))
                        try w.endRow()
                    }
                }
            }
            let nextSeq = (accepted.last?.seq ?? 0) + 1
            try connection.query("""
                UPDATE oversight.batches
                SET acknowledged_chunks = \(number),
                    next_seq = GREATEST(next_seq, \(nextSeq)),
                    accepted = accepted + \(accepted.count),
                    rejected = rejected + \(rejected.count)
                WHERE batch_id = \(batchID)::uuid
                """)
            return true
        }
    }

    /// Raw rejected input as text PostgreSQL accepts: invalid UTF-8 and NUL become U+FFFD.
    static func storableText(_ raw: [UInt8]) -> [UInt8] {
        let text = String(decoding: raw.prefix(64 * 1024), as: UTF8.self)
        return Array(text.utf8).map { $0 == 0 ? UInt8(ascii: "?") : $0 }
    }

    public func closeIntake(batchID: String) throws(PQError) {
        try connection.query("UPDATE oversight.batches SET intake_closed_at = COALESCE(intake_closed_at, now()) WHERE batch_id = \(batchID)::uuid")
    }

    /// Records the batch completed (the caller knows every job was done) unless `retry` has
    /// queued some of its jobs again since: a dead letter queued again whose job is neither
    /// assessed nor given up anew. False, changing nothing, then. (It looks at dead letters
    /// only: counting a million assessments took a second.)
    public func markCompletedIfDone(batchID: String) throws(PQError) -> Bool {
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
    public func pendingJobs(batchID: String, afterSeq: Int64, limit: Int) throws(PQError)
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

    /// Number of assessments stored for a batch.
    public func assessedCount(batchID: String) throws(PQError) -> Int64 {
        try connection.query("SELECT count(*) FROM oversight.assessments WHERE batch_id = \(batchID)::uuid").int64(0, 0) ?? 0
    }
}

/// A job given up after its last attempt.
public struct DeadLetter: Sendable, Hashable {
    public let batchID: String
    public let seq: Int64
    public let attempts: Int
    public let lastError: String
    public init(batchID: String, seq: Int64, attempts: Int, lastError: String) {
        self.batchID = batchID; self.seq = seq; self.attempts = attempts; self.lastError = lastError
    }
}

extension AuditStore {
    /// Records a dead letter (idempotent while one is active for the job).
    public func deadLetter(_ letter: DeadLetter) throws(PQError) {
        try connection.query("""
            INSERT INTO oversight.dead_letters (batch_id, seq, attempts, last_error)
            VALUES (\(letter.batchID)::uuid, \(letter.seq), \(letter.attempts), \(letter.lastError))
            ON CONFLICT (batch_id, seq) WHERE retried_at IS NULL DO NOTHING
            """)
    }

    /// Records one failed attempt that no worker reported (the worker died holding the job).
    public func recordFailure(batchID: String, seq: Int64, attempt: Int, worker: String, reason: String) throws(PQError) {
        try connection.query("""
            INSERT INTO oversight.job_failures (batch_id, seq, attempt, worker, reason)
            VALUES (\(batchID)::uuid, \(seq), \(attempt), \(worker), \(reason))
            """)
    }

    public func activeDeadLetterCount(batchID: String) throws(PQError) -> Int64 {
        try connection.query("SELECT count(*) FROM oversight.dead_letters WHERE batch_id = \(batchID)::uuid AND retried_at IS NULL").int64(0, 0) ?? 0
    }
}

extension AuditStore {
    /// Marks the batch's active dead letters as retried and reopens the batch; returns how many.
    public func retryDeadLetters(batchID: String) throws -> Int {
        try connection.transaction {
            let count = try connection.query("""
                UPDATE oversight.dead_letters SET retried_at = clock_timestamp()
                WHERE batch_id = \(batchID)::uuid AND retried_at IS NULL
                """).affectedRows
            try connection.query("UPDATE oversight.batches SET completed_at = NULL WHERE batch_id = \(batchID)::uuid AND cancelled_at IS NULL")
            return count
        }
    }

    public func cancel(batchID: String) throws(PQError) {
        try connection.query("UPDATE oversight.batches SET cancelled_at = COALESCE(cancelled_at, now()) WHERE batch_id = \(batchID)::uuid")
    }
}

/// A chunk came before the one the batch expects (chunks sent to a coordinator that died were
/// lost): the client should open the batch again and resume after the last stored chunk.
public struct ChunkOutOfOrder: Error, CustomStringConvertible, Sendable {
    public let number: Int64
    public let expected: Int64
    public var description: String { "chunk \(number) arrived before chunk \(expected); open the batch again and resume" }
}
