public import Identifiers
import LibPQ

// Measuring (`oversight bench`): the ceiling's scratch tables, shaped like the real ones and
// written with the same COPYs the services make, and the latencies read back from commits.
extension AuditStore {
    /// Creates empty scratch tables shaped like `oversight.jobs` and `oversight.assessments`
    /// (dropping earlier ones).
    public func createCeilingTables() throws {
        try connection.runScript("""
            DROP SCHEMA IF EXISTS oversight_bench_ceiling CASCADE;
            CREATE SCHEMA oversight_bench_ceiling;
            CREATE TABLE oversight_bench_ceiling.jobs (LIKE oversight.jobs INCLUDING ALL);
            CREATE TABLE oversight_bench_ceiling.assessments (LIKE oversight.assessments INCLUDING ALL);
            CREATE TABLE oversight_bench_ceiling.pending_facets (LIKE oversight.pending_facets INCLUDING ALL);
            """)
        // LIKE copies columns' storage and compression but not a table's options (its TOAST
        // threshold): they are copied here, so the ceiling stores rows exactly as the real tables do.
        for table in ["jobs", "assessments", "pending_facets"] {
            // Unlogged as the real one is (pending facets are not written to the WAL).
            if try connection.query("""
                SELECT relpersistence = 'u' FROM pg_class WHERE oid = ('oversight.' || \(table))::regclass
                """).bool(0, 0) == true {
                try connection.runScript("ALTER TABLE oversight_bench_ceiling.\(table) SET UNLOGGED")
            }
            let options = try connection.query("""
                SELECT array_to_string(reloptions, ', ') FROM pg_class
                WHERE oid = ('oversight.' || \(table))::regclass AND reloptions IS NOT NULL
                """)
            if options.rowCount == 1, let list = options.string(0, 0), !list.isEmpty {
                try connection.runScript("ALTER TABLE oversight_bench_ceiling.\(table) SET (\(list))")
            }
        }
    }

    public func dropCeilingTables() {
        _ = try? connection.runScript("DROP SCHEMA IF EXISTS oversight_bench_ceiling CASCADE")
    }

    /// COPYs `records` as jobs with seqs from `firstSeq` on, in one transaction, as intake does.
    public func copyCeilingJobs(batchID: BatchID, firstSeq: Int64, records: [[UInt8]]) throws {
        let id = Array(batchID.description.utf8)
        try connection.transaction {
            _ = try connection.copyIn("COPY oversight_bench_ceiling.jobs (batch_id, seq, line, record) FROM STDIN") { w in
                for (n, text) in records.enumerated() {
                    let seq = firstSeq + Int64(n)
                    w.add(utf8: id); w.add(seq); w.add(seq); w.add(utf8: text)
                    try w.endRow()
                }
            }
        }
    }

    /// COPYs one bundle of result rows with their facets (seq `s + 1` takes
    /// `pool[s % pool.count]`), in one transaction, as a worker does.
    public func copyCeilingAssessments(batchID: BatchID, seqs: Range<Int>, pool: [AssessmentRow], criteriaSHA256: [UInt8], worker: String) throws {
        let id = Array(batchID.description.utf8), workerBytes = Array(worker.utf8)
        try connection.transaction {
            _ = try connection.copyInBinary("""
                COPY oversight_bench_ceiling.assessments (\(unescaped: AssessmentRow.copyColumns)) FROM STDIN (FORMAT binary)
                """, fields: AssessmentRow.copyFieldCount) { w in
                for s in seqs {
                    try pool[s % pool.count].write(into: &w, seq: Int64(s + 1), batchID: id, criteriaSHA256: criteriaSHA256, worker: workerBytes)
                }
            }
            _ = try connection.copyInBinary("""
                COPY oversight_bench_ceiling.pending_facets (\(unescaped: AssessmentRow.facetColumns)) FROM STDIN (FORMAT binary)
                """, fields: AssessmentRow.facetFieldCount) { w in
                for s in seqs { try pool[s % pool.count].writeFacets(into: &w, seq: Int64(s + 1), batchID: id) }
            }
        }
    }

    /// Bytes of WAL written so far (the insert position), and the full-page images counted by
    /// `pg_stat_wal`: the difference between two readings is what happened in between.
    public func walPosition() throws -> (bytes: Int64, fullPageImages: Int64) {
        let rows = try connection.query("""
            SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint, (SELECT wal_fpi FROM pg_stat_wal)
            """)
        return (rows.int64(0, 0) ?? 0, rows.int64(0, 1) ?? 0)
    }

    /// Bytes on disk of every table of the `oversight` schema, with its indexes and TOAST,
    /// largest first.
    public func oversightTableBytes() throws -> [(table: String, bytes: Int64)] {
        let rows = try connection.query("""
            SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'oversight' AND c.relkind IN ('r', 'p', 'm') ORDER BY 2 DESC, 1
            """)
        return (0..<rows.rowCount).map { (rows.string($0, 0) ?? "", rows.int64($0, 1) ?? 0) }
    }

    /// Whether the coordinator has summarised the batch and moved its facets into the indexed
    /// record lists (the last write a batch causes).
    public func batchListed(batchID: BatchID) throws -> Bool {
        try connection.query("SELECT listed FROM oversight.batch_summaries WHERE batch_id = \(batchID)::uuid").bool(0, 0) ?? false
    }

    /// Forces a checkpoint, so that the next phase does not pay for the last one's WAL.
    public func checkpoint() { _ = try? connection.runScript("CHECKPOINT") }

    /// p50 and p99, in milliseconds, of (commit of a record's assessment) − (`acknowledgedAt` of
    /// its chunk: seconds since 1970, chunk n at index n − 1). The commit time is the writing
    /// transaction's start (`assessed_at`), a few milliseconds early.
    public func commitLatencies(batchID: BatchID, acknowledgedAt times: [Double], chunkSize: Int) throws -> (p50: Double, p99: Double) {
        let rows = try connection.query("""
            WITH acks AS (SELECT n, t FROM unnest(\(PGTextArray(times.map { String($0) }))::float8[]) WITH ORDINALITY AS a(t, n))
            SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY d), percentile_disc(0.99) WITHIN GROUP (ORDER BY d)
            FROM (SELECT greatest(0, extract(epoch FROM a.assessed_at) - acks.t) * 1000 AS d
                  FROM oversight.assessments a JOIN acks ON acks.n = (a.seq - 1) / \(Int64(chunkSize)) + 1
                  WHERE a.batch_id = \(batchID)::uuid) AS l
            """)
        return (rows.double(0, 0) ?? 0, rows.double(0, 1) ?? 0)
    }
}
