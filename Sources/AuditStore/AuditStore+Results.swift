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
    /// What the record lists filter on and the batch's counts add up, written with the result.
    public let facets: RecordFacetRow

    public init(batchID: BatchID, seq: Int64, record: JSONValue, result: AssessmentResult, criteriaSHA256: [UInt8], inputSHA256: [UInt8], attempt: Int) {
        let recordID = record["id"]?.stringValue
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
        self.facets = RecordFacetRow(record: record, result: result)
    }
}

/// One row of `oversight.pending_facets` (which the summary after a seal moves into
/// `oversight.record_facets` and `oversight.record_rules`): read by the worker from the record
/// and result it has in hand, so that nothing has to parse a
/// stored result's JSON again to list, filter or count a batch (a million-record batch's
/// summary took minutes doing so). The same values `oversight.summarise_batch` derives from
/// the stored JSON for results written without them.
public struct RecordFacetRow: Sendable, Equatable {
    public let restsOnInferred: Bool
    public let inferredFacts: Int
    public let system: String?
    public let vendor: String?
    public let operatorName: String?
    public let country: String?
    public let region: String?
    /// The words of the first open question (the schema field's question).
    public let firstQuestion: String?
    /// The field path of every open question, in rank order.
    public let questions: [String]
    /// Lower-case free text: record id, operator, system, vendor and the record's summary,
    /// separated by U+001F (the text a record list's search reads).
    public let search: String
    /// The rules that fired: the pack's place in the criteria set (from 1) and the rule id,
    /// once each.
    public let fired: [(pack: Int, rule: String)]

    public init(record: JSONValue, result: AssessmentResult) {
        // A free-text field may hold NUL, which a text column cannot: shown as U+FFFD.
        func text(_ value: JSONValue?) -> String? {
            guard let s = value?.stringValue else { return nil }
            return s.utf8.contains(0) ? s.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : s
        }
        restsOnInferred = result.restsOnInferred
        inferredFacts = result.inferred.count
        let system = record["system"]
        self.system = text(system?["type"]) ?? text(system?["name"])
        vendor = text(system?["vendor"])
        let op = record["operator"]
        operatorName = text(op?["name"])
        country = text(op?["country"])
        region = text(op?["region"])
        firstQuestion = result.questions.first?.text
        questions = result.questions.map(\.path)
        search = [text(record["id"]), operatorName, self.system, vendor, text(record["summary"])]
            .compactMap { $0 }.joined(separator: "\u{1F}").lowercased()
        var fired: [(pack: Int, rule: String)] = []
        for (p, pack) in result.packs.enumerated() {
            var seen = Set<String>()
            for rule in pack.firedRuleIDs where seen.insert(rule).inserted { fired.append((p + 1, rule)) }
        }
        self.fired = fired
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.restsOnInferred == b.restsOnInferred && a.inferredFacts == b.inferredFacts && a.system == b.system && a.vendor == b.vendor
            && a.operatorName == b.operatorName && a.country == b.country && a.region == b.region && a.firstQuestion == b.firstQuestion
            && a.questions == b.questions && a.search == b.search && a.fired.map(\.pack) == b.fired.map(\.pack) && a.fired.map(\.rule) == b.fired.map(\.rule)
    }
}

extension AssessmentRow {
    /// The columns `write(into:)` fills, in order.
    static let copyColumns: StaticString = """
        batch_id, seq, record_id, verdict, worst_case, determined, score, applies, criteria_sha256, input_sha256, row_sha256, result,
        engine, worker, attempt
        """

    /// One COPY row of this assessment under `seq` (the bench reuses rows under other seqs).
    /// In COPY's binary format: every field in its column's type (`copyColumns`, in order).
    func write(into w: inout PGBinaryCopyWriter, seq: Int64, batchID: [UInt8], criteriaSHA256: [UInt8], worker: [UInt8]) throws(PQError) {
        w.add(uuid: batchID); w.add(int8: seq); w.add(text: recordID); w.add(text: verdict.rawValue); w.add(text: worstCase.rawValue)
        w.add(bool: determined); w.add(int2: Int16(score))
        w.add(text: applies.rawValue); w.add(bytea: criteriaSHA256); w.add(bytea: inputSHA256)
        w.add(bytea: rowSHA256); w.add(text: result); w.add(text: engine); w.add(text: worker); w.add(int2: Int16(clamping: attempt))
        try w.endRow()
    }
    static let copyFieldCount = 15

    /// The columns `writeFacets(into:)` fills, in order (those of `oversight.pending_facets`).
    static let facetColumns: StaticString = """
        batch_id, seq, record_id, verdict, worst_case, determined, applies, rests_on, inferred_facts, system, vendor, operator,
        country, region, first_question, search, questions, fired
        """

    func writeFacets(into w: inout PGBinaryCopyWriter, seq: Int64, batchID: [UInt8]) throws(PQError) {
        w.add(uuid: batchID); w.add(int8: seq); w.add(text: recordID); w.add(text: verdict.rawValue); w.add(text: worstCase.rawValue)
        w.add(bool: determined); w.add(text: applies.rawValue); w.add(text: facets.restsOnInferred ? "inferred" : "declared")
        w.add(int4: Int32(clamping: facets.inferredFacts))
        w.add(text: facets.system); w.add(text: facets.vendor); w.add(text: facets.operatorName); w.add(text: facets.country); w.add(text: facets.region)
        w.add(text: facets.firstQuestion); w.add(text: facets.search); w.add(textArray: facets.questions)
        w.add(textArray: facets.fired.map { "\($0.pack) \($0.rule)" })
        try w.endRow()
    }
    static let facetFieldCount = 18
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
                    try copyFacets(into: "oversight.pending_facets", batchID: batchID, rows: rows)
                    return rows.count
                }
            } catch let error as PQError where error.sqlState == "23505" || error.sqlState == "0A000" {
                if error.sqlState == "0A000" { directCopy = false }
            }
        }
        try ensureStaging()
        return try connection.transaction {
            try copyRows(into: "assessments_staging", batchID: batchID, criteriaSHA256: criteriaSHA256, worker: worker, rows: rows)
            try copyFacets(into: "facets_staging", batchID: batchID, rows: rows)
            // Facets only for the rows this wrote: a redelivered job's are there already
            // (written with its result), and the summary counts one facet row per assessment.
            return try connection.query("""
                WITH written AS (
                    INSERT INTO oversight.assessments (\(unescaped: AssessmentRow.copyColumns))
                    SELECT \(unescaped: AssessmentRow.copyColumns) FROM assessments_staging
                    ON CONFLICT (batch_id, seq) DO NOTHING
                    RETURNING seq),
                facets AS (
                    INSERT INTO oversight.pending_facets (\(unescaped: AssessmentRow.facetColumns))
                    SELECT \(unescaped: AssessmentRow.facetColumns) FROM facets_staging WHERE seq IN (SELECT seq FROM written))
                SELECT count(*) FROM written
                """).int(0, 0) ?? 0
        }
    }

    /// The facets and fired rules of `rows`, by COPY into the table named.
    private func copyFacets(into table: StaticString, batchID: BatchID, rows: [AssessmentRow]) throws {
        let id = Array(batchID.description.utf8)
        try connection.copyInBinary("COPY \(unescaped: table) (\(unescaped: AssessmentRow.facetColumns)) FROM STDIN (FORMAT binary)",
                                    fields: AssessmentRow.facetFieldCount) { w in
            for r in rows { try r.writeFacets(into: &w, seq: r.seq, batchID: id) }
        }
    }

    private func copyRows(into table: StaticString, batchID: BatchID, criteriaSHA256: [UInt8], worker: String, rows: [AssessmentRow]) throws {
        let id = Array(batchID.description.utf8)
        let workerBytes = Array(worker.utf8)
        try connection.copyInBinary("""
            COPY \(unescaped: table) (\(unescaped: AssessmentRow.copyColumns)) FROM STDIN (FORMAT binary)
            """, fields: AssessmentRow.copyFieldCount) { w in
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
        try connection.query("""
            CREATE TEMP TABLE IF NOT EXISTS facets_staging (
                batch_id uuid, seq bigint, record_id text, verdict text, worst_case text, determined boolean, applies text, rests_on text,
                inferred_facts integer, system text, vendor text, operator text, country text, region text, first_question text,
                search text, questions text[], fired text[]
            ) ON COMMIT DELETE ROWS
            """)
        stagingReady = true
    }
}
