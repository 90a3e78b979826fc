public import Identifiers
import LibPQ
public import Assessment

// Queries of the terminal commands (`status`, `results`, `deadletters`, `questions`, `reassess`,
// the demo's summary), as typed rows from the reader views: an organisation's reader login sees
// its own batches only.

/// A record of a batch that supersedes the latest assessment of the same record in an earlier
/// batch of the organisation, and how its verdict moved.
public struct RecordMove: Sendable {
    public let recordID: String
    public let previousBatch: String
    public let before: (settled: Verdict, worst: Verdict)
    public let after: (settled: Verdict, worst: Verdict)
    /// The answers that changed between the two records, and whether they had been asked for.
    public let answers: AnswersBack
    public var moved: Bool { before != after }
    public var movement: String { Verdict.movement(from: before, to: after) }

    public var json: JSONValue {
        .object([
            ("record_id", .string(recordID)), ("previous_batch", .string(previousBatch)),
            ("before", .object([("verdict", .string(before.settled.rawValue)), ("worst_case", .string(before.worst.rawValue))])),
            ("after", .object([("verdict", .string(after.settled.rawValue)), ("worst_case", .string(after.worst.rawValue))])),
            ("moved", .bool(moved)),
            ("answers", .array(answers.answers.map { answer in
                .object([("field", .string(answer.field)), ("before", answer.before ?? .null), ("after", answer.after), ("asked", .bool(answer.asked))])
            })),
        ])
    }
}

/// One stored assessment as `results` exports it.
public struct ExportedResult: Sendable {
    public let seq: Int64
    public let recordID: String?
    public let verdict: String
    /// Engine 4 and later; nil for rows of earlier engines.
    public let worstCase: String?
    public let determined: Bool?
    public let score: Int
    public let applies: String
    public let result: JSONValue
    public let inputSHA256: String
    public let rowSHA256: String
    public let worker: String
    public let assessedAt: String

    public init(seq: Int64, recordID: String?, verdict: String, worstCase: String?, determined: Bool?, score: Int, applies: String,
                result: JSONValue, inputSHA256: String, rowSHA256: String, worker: String, assessedAt: String) {
        self.seq = seq; self.recordID = recordID; self.verdict = verdict; self.worstCase = worstCase; self.determined = determined
        self.score = score; self.applies = applies; self.result = result; self.inputSHA256 = inputSHA256; self.rowSHA256 = rowSHA256
        self.worker = worker; self.assessedAt = assessedAt
    }
}

/// Title, citation and severity of one rule of a batch's packs (`oversight.rules`).
public struct RuleText: Sendable, Hashable {
    public let pack: String
    public let rule: String
    public let title: String
    public let citation: String
    public let severity: String
}

/// One ranked open question of one record (`oversight.questions`), with the record's operator
/// ("name, region"; nil when the record names neither) and system.
public struct OpenQuestion: Sendable {
    public let operatorName: String?
    /// The record id, or "seq N" for a record without one.
    public let recordID: String
    public let system: String
    public let rank: Int
    public let fields: [String]
    public let question: String?
    public let rules: [String]
    public let ifWorst: String
}

/// Settled verdict and worst case of a batch's records with their count and mean score.
public struct SummaryLine: Sendable {
    public let verdict: String
    public let worstCase: String?
    public let records: Int64
    public let meanScore: String
}

extension AuditStore {
    /// Whether the login sees the batch (it exists and belongs to the login's organisation).
    public func isVisible(batchID: BatchID) throws -> Bool {
        try connection.query("SELECT 1 FROM oversight.visible_batches WHERE batch_id = \(batchID)::uuid").rowCount == 1
    }

    /// Record ids that occur more than once among the batch's assessed records.
    public func duplicateRecordIDs(batchID: BatchID) throws -> Int64 {
        try connection.query("""
            SELECT count(*) FROM (SELECT 1 FROM oversight.results r WHERE r.batch_id = \(batchID)::uuid AND r.record_id IS NOT NULL
                                  GROUP BY r.record_id HAVING count(*) > 1) d
            """).int64(0, 0) ?? 0
    }

    /// The batch's records that supersede the latest assessment of the same record in an earlier
    /// batch of the organisation (by id, or the id a record names in `supersedes`). One pass over
    /// each side (a hash join), no lookup per record.
    public func supersessions(batchID: BatchID) throws -> [RecordMove] {
        // Nothing to supersede without an earlier batch of the organisation: skip reading every
        // record of the batch (seconds for a million).
        let earlier = try connection.query("""
            SELECT EXISTS (SELECT 1 FROM oversight.visible_batches t JOIN oversight.visible_batches b
                           ON b.organisation = t.organisation AND b.created_at < t.created_at
                           WHERE t.batch_id = \(batchID)::uuid)
            """).bool(0, 0) ?? false
        guard earlier else { return [] }
        let rows = try connection.query("""
            WITH this AS (SELECT organisation, created_at FROM oversight.visible_batches WHERE batch_id = \(batchID)::uuid),
            later AS (
                SELECT r.seq, r.record_id, r.verdict, r.worst_case, s.record,
                       COALESCE(s.record::jsonb->>'supersedes', r.record_id) AS key
                FROM oversight.results r JOIN oversight.submitted_records s USING (batch_id, seq)
                WHERE r.batch_id = \(batchID)::uuid AND COALESCE(s.record::jsonb->>'supersedes', r.record_id) IS NOT NULL),
            earlier AS (
                SELECT DISTINCT ON (r.record_id) r.record_id, r.batch_id, r.verdict, r.worst_case, r.result, s.record
                FROM oversight.results r
                JOIN oversight.visible_batches b ON b.batch_id = r.batch_id
                JOIN oversight.submitted_records s ON s.batch_id = r.batch_id AND s.seq = r.seq, this
                WHERE b.organisation = this.organisation AND b.created_at < this.created_at AND r.record_id IN (SELECT key FROM later)
                ORDER BY r.record_id, b.created_at DESC, r.seq DESC)
            SELECT l.record_id, e.batch_id::text, e.verdict, e.worst_case, e.result::text, e.record, l.verdict, l.worst_case, l.record
            FROM later l JOIN earlier e ON e.record_id = l.key ORDER BY l.seq
            """)
        return (0..<rows.rowCount).compactMap { i in
            guard let before = rows.string(i, 2).flatMap(Verdict.init(rawValue:)),
                  let after = rows.string(i, 6).flatMap(Verdict.init(rawValue:)),
                  let earlier = try? JSONParser.parse(rows.string(i, 5) ?? ""), let later = try? JSONParser.parse(rows.string(i, 8) ?? "")
            else { return nil }
            // An engine-3 row has no worst case: its verdict stands for both.
            let beforeWorst = rows.string(i, 3).flatMap(Verdict.init(rawValue:)) ?? before
            let asked: Set<String>
            if case .array(let questions)? = (try? JSONParser.parse(rows.string(i, 4) ?? "{}"))?["questions"] {
                asked = Set(questions.compactMap { q -> [String]? in
                    guard case .array(let fields)? = q["fields"] else { return nil }
                    return fields.compactMap(\.stringValue)
                }.flatMap { $0 })
            } else {
                asked = []
            }
            return RecordMove(recordID: rows.string(i, 0) ?? "", previousBatch: rows.string(i, 1) ?? "", before: (before, beforeWorst),
                              after: (after, rows.string(i, 7).flatMap(Verdict.init(rawValue:)) ?? after),
                              answers: AnswersBack.between(earlier, later, asked: asked))
        }
    }

    /// The words of each field's question (`oversight.field_questions`), by field path.
    public func fieldQuestions() throws -> [String: String] {
        let rows = try connection.query("SELECT path, question FROM oversight.field_questions")
        return Dictionary((0..<rows.rowCount).map { (rows.string($0, 0)!, rows.string($0, 1)!) }, uniquingKeysWith: { a, _ in a })
    }

    /// Every rule of the batch's packs, with its title, citation and severity.
    public func ruleTexts(batchID: BatchID) throws -> [RuleText] {
        let rows = try connection.query("""
            SELECT r.pack, r.rule, r.title, r.citation, r.severity FROM oversight.rules r
            WHERE r.criteria_sha256 = (SELECT b.criteria_sha256 FROM oversight.visible_batches b WHERE b.batch_id = \(batchID)::uuid)
            """)
        return (0..<rows.rowCount).map { i in
            RuleText(pack: rows.string(i, 0)!, rule: rows.string(i, 1)!, title: rows.string(i, 2) ?? "",
                     citation: rows.string(i, 3) ?? "", severity: rows.string(i, 4) ?? "")
        }
    }

    /// The lowest and highest seq among the batch's assessments; nil when it has none.
    public func assessedSeqRange(batchID: BatchID) throws -> ClosedRange<Int64>? {
        let bounds = try connection.query("SELECT min(seq), max(seq) FROM oversight.results WHERE batch_id = \(batchID)::uuid")
        guard let low = bounds.int64(0, 0), let high = bounds.int64(0, 1) else { return nil }
        return low...high
    }

    /// The batch's assessments with seq in `seqs`, in seq order (a closed range: pages bounded
    /// whatever the planner's statistics say).
    public func exportedResults(batchID: BatchID, seqs: ClosedRange<Int64>) throws -> [ExportedResult] {
        let rows = try connection.query("""
            SELECT seq, record_id, verdict, score, applies, result, encode(input_sha256, 'hex'),
                   encode(row_sha256, 'hex'), worker, to_char(assessed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   worst_case, determined
            FROM oversight.results WHERE batch_id = \(batchID)::uuid AND seq >= \(seqs.lowerBound) AND seq <= \(seqs.upperBound)
            ORDER BY seq
            """)
        return (0..<rows.rowCount).map { i in
            ExportedResult(seq: rows.int64(i, 0)!, recordID: rows.string(i, 1), verdict: rows.string(i, 2)!,
                           worstCase: rows.string(i, 10), determined: rows.bool(i, 11), score: rows.int(i, 3)!,
                           applies: rows.string(i, 4)!, result: (try? JSONParser.parse(rows.string(i, 5)!)) ?? .null,
                           inputSHA256: rows.string(i, 6)!, rowSHA256: rows.string(i, 7)!, worker: rows.string(i, 8)!,
                           assessedAt: rows.string(i, 9)!)
        }
    }

    /// Dead letters (with every attempt's error) of one batch, or of every batch the login sees;
    /// with `openOnly`, only those still given up (not retried, not assessed since).
    public func deadLetters(batchID: BatchID?, openOnly: Bool) throws -> [DeadLetterRow] {
        let rows = try connection.query("""
            SELECT seq, line, attempts, last_error, to_char(dead_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), open, failures::text,
                   batch_id::text
            FROM oversight.dead_letter_attempts
            WHERE (\(batchID)::uuid IS NULL OR batch_id = \(batchID)::uuid) AND (open OR NOT \(openOnly))
            ORDER BY batch_id, seq
            """)
        return deadLetterRows(rows)
    }

    /// Whether each pack binds each operator ("name, region"): binding for any of its deployments.
    public func operatorBindings(batchID: BatchID) throws -> [(operatorName: String?, pack: String, binds: Bool)] {
        let rows = try connection.query("""
            SELECT \(unescaped: Self.operatorColumn), p.pack, bool_or(p.applies = 'binding')
            FROM oversight.pack_results p JOIN oversight.submitted_records s USING (batch_id, seq)
            WHERE p.batch_id = \(batchID)::uuid GROUP BY 1, 2
            """)
        return (0..<rows.rowCount).map { i in (rows.string(i, 0).flatMap { $0.isEmpty ? nil : $0 }, rows.string(i, 1)!, rows.bool(i, 2) == true) }
    }

    /// The batch's open questions, record by record, in rank order.
    public func openQuestions(batchID: BatchID) throws -> [OpenQuestion] {
        let separator = "\u{1F}"
        let rows = try connection.query("""
            SELECT \(unescaped: Self.operatorColumn), coalesce(q.record_id, 'seq ' || q.seq),
                   coalesce(s.record::jsonb->'system'->>'name', s.record::jsonb->'system'->>'type', 'a system'),
                   q.rank, array_to_string(q.fields, \(separator)), q.question, array_to_string(q.rules, \(separator)), q.if_worst
            FROM oversight.questions q JOIN oversight.submitted_records s USING (batch_id, seq)
            WHERE q.batch_id = \(batchID)::uuid ORDER BY q.seq, q.rank
            """)
        func list(_ text: String?) -> [String] { (text ?? "").split(separator: Character(separator)).map(String.init) }
        return (0..<rows.rowCount).map { i in
            OpenQuestion(operatorName: rows.string(i, 0).flatMap { $0.isEmpty ? nil : $0 }, recordID: rows.string(i, 1) ?? "",
                         system: rows.string(i, 2) ?? "", rank: rows.int(i, 3) ?? 0, fields: list(rows.string(i, 4)),
                         question: rows.string(i, 5).flatMap { $0.isEmpty ? nil : $0 }, rules: list(rows.string(i, 6)),
                         ifWorst: rows.string(i, 7) ?? "")
        }
    }

    /// An operator as the questions name it: "name, region" from the record as submitted.
    private static let operatorColumn: StaticString = """
        concat_ws(', ', nullif(trim(s.record::jsonb->'operator'->>'name'), ''), nullif(trim(s.record::jsonb->'operator'->>'region'), ''))
        """

    /// Up to `limit` records the batch accepted with seq above `after`, in seq order, as their
    /// canonical bytes.
    public func submittedRecords(batchID: BatchID, after: Int64, limit: Int) throws -> [(seq: Int64, record: [UInt8])] {
        let page = try connection.query("""
            SELECT seq, record FROM oversight.submitted_records WHERE batch_id = \(batchID)::uuid AND seq > \(after)
            ORDER BY seq LIMIT \(Int64(limit))
            """)
        return (0..<page.rowCount).map { (page.int64($0, 0)!, page.textBytes($0, 1) ?? []) }
    }

    /// The batch's records by settled verdict and worst case, gravest first, with mean scores.
    public func summaryLines(batchID: BatchID) throws -> [SummaryLine] {
        let rows = try connection.query("""
            SELECT verdict, worst_case, records, mean_score FROM oversight.assessment_summary
            WHERE batch_id = \(batchID)::uuid
            ORDER BY array_position(ARRAY['prohibited','high_risk','elevated','limited','minimal'], verdict),
                     array_position(ARRAY['prohibited','high_risk','elevated','limited','minimal'], worst_case)
            """)
        return (0..<rows.rowCount).map { i in
            SummaryLine(verdict: rows.string(i, 0) ?? "", worstCase: rows.string(i, 1), records: rows.int64(i, 2) ?? 0,
                        meanScore: rows.string(i, 3) ?? "")
        }
    }
}
