public import Identifiers
import LibPQ
public import Assessment

/// One row of `oversight.assessments`, as a worker writes it.
public struct AssessmentRow: Sendable {
    public let seq: Int64
    public let recordID: String?
    public let verdict: Verdict
    public let worstCase: Verdict
    public let determined: Bool
    public let score: Int
    public let applies: Applicability
    public let inputSHA256: [UInt8]
    public let rowSHA256: [UInt8]
    /// Canonical JSON of the result.
    public let result: [UInt8]
    public let engine: String
    public let attempt: Int

    public init(batchID: BatchID, seq: Int64, recordID: String?, result: AssessmentResult, criteriaSHA256: [UInt8], inputSHA256: [UInt8], attempt: Int) {
        self.seq = seq
        self.recordID = recordID
        self.verdict = result.verdict
        self.worstCase = result.worstCase
        self.determined = result.determined
        self.score = result.score
        self.applies = Applicability.overall(result.packs.map(\.applies))
        self.inputSHA256 = inputSHA256
        let canonical = result.canonicalBytes
        self.result = canonical
        self.engine = result.engine
        self.rowSHA256 = AuditHash.row(batchID: batchID.description, seq: seq, inputSHA256: inputSHA256, criteriaSHA256: criteriaSHA256, result: canonical)
        self.attempt = attempt
    }
}

extension AssessmentRow {
    /// The columns `write(into:)` fills, in order.
    static let copyColumns: StaticString = """
        batch_id, seq, record_id, verdict, worst_case, determined, score, applies, criteria_sha256, input_sha256, row_sha256, result,
        engine, worker, attempt
        """

    /// One COPY row of this assessment under `seq` (the bench reuses rows under other seqs).
    func write(into w: inout PGCopyWriter, seq: Int64, batchID: [UInt8], criteriaSHA256: [UInt8], worker: [UInt8]) throws(PQError) {
        w.add(utf8: batchID); w.add(seq); w.add(recordID); w.add(verdict.rawValue); w.add(worstCase.rawValue)
        w.add(determined); w.add(score)
        w.add(applies.rawValue); w.add(bytea: criteriaSHA256); w.add(bytea: inputSHA256)
        w.add(bytea: rowSHA256); w.add(utf8: result); w.add(engine); w.add(utf8: worker); w.add(attempt)
        try w.endRow()
    }
}

extension AuditStore {
    /// Writes the results of one bundle in one transaction: COPY into a session-local staging
    /// table, then `INSERT … ON CONFLICT DO NOTHING`, so a redelivered job never makes a second
    /// row. Returns the number of new rows. Every seq in `rows` is stored once this returns.
    @discardableResult
    public func writeAssessments(batchID: BatchID, criteriaSHA256: [UInt8], worker: String, rows: [AssessmentRow]) throws -> Int {
        guard !rows.isEmpty else { return 0 }
        // The fast path: one COPY straight into the table. A redelivered job (its row exists)
        // aborts it with a unique violation; then, and when row-level security forbids COPY for
        // this role, the bundle goes through the staging table, which skips existing rows.
        if directCopy {
            do {
                return try connection.transaction {
                    try copyRows(into: "oversight.assessments", batchID: batchID, criteriaSHA256: criteriaSHA256, worker: worker, rows: rows)
                    return rows.count
                }
            } catch let error as PQError where error.sqlState == "23505" || error.sqlState == "0A000" {
                if error.sqlState == "0A000" { directCopy = false }
            }
        }
        try ensureStaging()
        return try connection.transaction {
            try copyRows(into: "assessments_staging", batchID: batchID, criteriaSHA256: criteriaSHA256, worker: worker, rows: rows)
            return try connection.query("""
                    INSERT INTO oversight.assessments (\(unescaped: AssessmentRow.copyColumns))
                    SELECT \(unescaped: AssessmentRow.copyColumns) FROM assessments_staging
                    ON CONFLICT (batch_id, seq) DO NOTHING
                    """).affectedRows
        }
    }

    private func copyRows(into table: StaticString, batchID: BatchID, criteriaSHA256: [UInt8], worker: String, rows: [AssessmentRow]) throws {
        let id = Array(batchID.description.utf8)
        let workerBytes = Array(worker.utf8)
        try connection.copyIn("""
            COPY \(unescaped: table) (\(unescaped: AssessmentRow.copyColumns)) FROM STDIN
            """) { w in
            for r in rows { try r.write(into: &w, seq: r.seq, batchID: id, criteriaSHA256: criteriaSHA256, worker: workerBytes) }
        }
    }

    private func ensureStaging() throws(PQError) {
        guard !stagingReady else { return }
        // Temporary: private to this session, emptied at every commit. Columns spelled out: `LIKE`
        // would need SELECT on every assessment, which a worker must not have.
        try connection.query("""
            CREATE TEMP TABLE IF NOT EXISTS assessments_staging (
                batch_id uuid, seq bigint, record_id text, verdict text, worst_case text, determined boolean, score smallint, applies text,
                criteria_sha256 bytea, input_sha256 bytea, row_sha256 bytea, result text, engine text,
                worker text, attempt smallint
            ) ON COMMIT DELETE ROWS
            """)
        stagingReady = true
    }
}
