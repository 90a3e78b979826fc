public import Identifiers
import LibPQ
public import Assessment

// Reading: what reports, the console and the query commands show, as typed rows from the
// reader views (an organisation's reader login sees its own batches only).

/// A batch as `oversight.batch_progress` shows it.
public struct BatchSummary: Sendable, Hashable, Encodable {
    public let batchID: BatchID
    public let organisation: String
    public let name: String
    public let source: String
    /// `id@version`, in the criteria set's order.
    public let packs: [String]
    public let state: String
    public let accepted: Int64
    public let rejected: Int64
    public let assessed: Int64
    public let failing: Int64
    public let deadLetters: Int64
    /// ISO 8601, UTC.
    public let createdAt: String
    public let completedAt: String?
    public let sealedAt: String?
    public let asOf: String?
    public let reassessmentOf: String?
    /// Hex.
    public let criteriaSHA256: String
}

/// Records counted by a key (a system type, a region, …), settled verdict and worst case.
public struct VerdictCount: Sendable, Hashable, Encodable {
    public let key: String
    public let verdict: String
    public let worstCase: String?
    public let records: Int64
}

/// A rule and how many of a batch's records it fired for.
public struct RuleCount: Sendable, Hashable, Encodable {
    public let pack: String
    public let rule: String
    public let title: String
    public let citation: String
    public let severity: String
    public let rationale: String
    public let records: Int64
}

/// An open question and how many records ask it (at any rank, and first).
public struct QuestionCount: Sendable, Hashable, Encodable {
    public let field: String
    public let question: String
    public let records: Int64
    public let first: Int64
}

/// How much of a batch's verdicts rest on facts read from records' text.
public struct EvidenceCounts: Sendable, Hashable, Encodable {
    public let recordsWithFacts: Int64
    public let factsUsed: Int64
    public let restingOnInferred: Int64
}

/// Rejections of a batch grouped by field, with the first line and message of each.
public struct RejectionGroup: Sendable, Hashable, Encodable {
    public let field: String
    public let records: Int64
    public let firstLine: Int64
    public let message: String
}

/// One rejected line.
public struct RejectionRow: Sendable, Hashable, Encodable {
    public let line: Int64
    public let field: String
    public let message: String
    /// The line's first bytes, as text (invalid UTF-8 shown as U+FFFD).
    public let raw: String
}

/// A dead letter and every attempt's error.
public struct DeadLetterRow: Sendable, Hashable, Encodable {
    public struct Attempt: Sendable, Hashable, Encodable {
        public let attempt: Int
        public let worker: String
        public let reason: String
        public let failedAt: String
    }
    public let batchID: BatchID
    public let seq: Int64
    public let line: Int64?
    public let attempts: Int
    public let lastError: String
    public let deadAt: String
    public let open: Bool
    public let failures: [Attempt]
}

/// One record of a batch's index: what lists show and filter on.
public struct RecordIndexRow: Sendable, Hashable, Encodable {
    public let seq: Int64
    public let recordID: String?
    public let verdict: String
    public let worstCase: String?
    public let determined: Bool?
    public let applies: String
    public let restsOn: String
    public let system: String?
    public let vendor: String?
    public let operatorName: String?
    public let country: String?
    public let region: String?
    public let firstQuestion: String?
}

/// What a record list is filtered by; nil is no filter.
public struct RecordFilter: Sendable, Hashable {
    public var verdict: String?
    public var worstCase: String?
    public var system: String?
    public var rule: String?
    public var operatorName: String?
    public var region: String?
    /// Case-insensitive, in the record id, operator, system, vendor and summary.
    public var text: String?
    public init(verdict: String? = nil, worstCase: String? = nil, system: String? = nil, rule: String? = nil,
                operatorName: String? = nil, region: String? = nil, text: String? = nil) {
        self.verdict = verdict; self.worstCase = worstCase; self.system = system; self.rule = rule
        self.operatorName = operatorName; self.region = region; self.text = text
    }
}

/// A stored assessment with the record it assessed, to explain it again.
public struct StoredResult: Sendable {
    public let seq: Int64
    public let recordID: String?
    public let record: [UInt8]
    public let result: [UInt8]
    public let criteriaSHA256: [UInt8]
    public let inputSHA256: [UInt8]
    public let rowSHA256: [UInt8]
    public let asOf: String?
    public let engine: String
}

extension AuditStore {
    /// A store for reading pages, lists and reports: PostgreSQL's JIT compiler is turned off
    /// for the session, since it spends half a second compiling the views' plans (their live
    /// fallback counts make them look expensive) for queries that then run in milliseconds.
    public static func reading(conninfo: String, applicationName: String) throws -> AuditStore {
        let store = try AuditStore(conninfo: conninfo, applicationName: applicationName)
        try store.connection.query("SET jit = off")
        return store
    }

    /// Summarises the batch after its newest seal, both steps: `summariseCounts`, then
    /// `listRecords`. Returns the records summarised.
    @discardableResult
    public func summarise(batchID: BatchID) throws -> Int64 {
        let records = try summariseCounts(batchID: batchID)
        try listRecords(batchID: batchID)
        return records
    }

    /// Step 1 (`oversight.summarise_batch`): the counts a batch page and a report read, from
    /// the facets the workers wrote, replacing an earlier summary; returns the records counted.
    @discardableResult
    public func summariseCounts(batchID: BatchID) throws -> Int64 {
        try connection.transaction {
            try connection.query("SELECT oversight.summarise_batch(\(batchID)::uuid)").int64(0, 0) ?? 0
        }
    }

    /// Step 2 (`oversight.list_batch`): the batch's pending facets into the indexed tables
    /// record lists read, and the summary marked listed; returns the facets moved.
    @discardableResult
    public func listRecords(batchID: BatchID) throws -> Int64 {
        try connection.transaction {
            try connection.query("SELECT oversight.list_batch(\(batchID)::uuid)").int64(0, 0) ?? 0
        }
    }

    /// Completed batches whose newest seal has no summary, or one not yet listed (the
    /// coordinator died while making it, or a migration dropped summaries of an older shape),
    /// oldest first.
    public func batchesToSummarise() throws -> [BatchID] {
        let rows = try connection.query("""
            SELECT b.batch_id::text FROM oversight.batches b
            WHERE b.completed_at IS NOT NULL AND b.cancelled_at IS NULL
              AND EXISTS (SELECT 1 FROM oversight.batch_seals z WHERE z.batch_id = b.batch_id)
              AND NOT EXISTS (SELECT 1 FROM oversight.batch_summaries s WHERE s.batch_id = b.batch_id AND s.listed
                              AND s.seal = (SELECT max(z.seal) FROM oversight.batch_seals z WHERE z.batch_id = b.batch_id))
            ORDER BY b.completed_at
            """)
        return (0..<rows.rowCount).compactMap { rows.batchID($0, 0) }
    }

    /// Whether the batch has a summary made after its newest seal (then pages read its counts).
    public func isSummarised(batchID: BatchID) throws -> Bool {
        try connection.query("SELECT EXISTS (SELECT 1 FROM oversight.current_summaries WHERE batch_id = \(batchID)::uuid)").bool(0, 0) ?? false
    }

    /// Whether that summary is listed too (then record lists read its facets).
    public func isListed(batchID: BatchID) throws -> Bool {
        try connection.query("SELECT EXISTS (SELECT 1 FROM oversight.current_summaries WHERE batch_id = \(batchID)::uuid AND listed)").bool(0, 0) ?? false
    }

    private static let iso = #"YYYY-MM-DD"T"HH24:MI:SS"Z""#

    /// Batches the login may see, newest first (oldest first with `oldestFirst`; at most `limit`,
    /// all when nil), or the one named.
    public func batchSummaries(batchID: BatchID? = nil, limit: Int? = 500, oldestFirst: Bool = false) throws -> [BatchSummary] {
        let rows = try connection.query("""
            SELECT p.batch_id::text, p.organisation, p.name, p.source, array_to_string(p.packs, ' '), p.state, p.accepted, p.rejected,
                   p.assessed, p.failing, p.dead_letters,
                   to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   to_char(p.completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   to_char(p.sealed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   to_char(p.as_of, 'YYYY-MM-DD'), p.reassessment_of::text, p.criteria_sha256
            FROM oversight.batch_overview p
            WHERE (\(batchID)::uuid IS NULL OR p.batch_id = \(batchID)::uuid)
            ORDER BY CASE WHEN \(oldestFirst) THEN p.created_at END, p.created_at DESC LIMIT \(limit.map(Int64.init))
            """)
        return (0..<rows.rowCount).map { i in
            BatchSummary(batchID: rows.batchID(i, 0)!, organisation: rows.string(i, 1)!, name: rows.string(i, 2)!, source: rows.string(i, 3)!,
                         packs: rows.string(i, 4)!.split(separator: " ").map(String.init), state: rows.string(i, 5)!,
                         accepted: rows.int64(i, 6)!, rejected: rows.int64(i, 7)!, assessed: rows.int64(i, 8)!,
                         failing: rows.int64(i, 9)!, deadLetters: rows.int64(i, 10)!, createdAt: rows.string(i, 11)!,
                         completedAt: rows.string(i, 12), sealedAt: rows.string(i, 13), asOf: rows.string(i, 14),
                         reassessmentOf: rows.string(i, 15), criteriaSHA256: (rows.bytes(i, 16) ?? []).hexString)
        }
    }

    /// The batch's records by settled verdict and worst case (key empty).
    public func verdictCounts(batchID: BatchID) throws -> [VerdictCount] {
        if try isSummarised(batchID: batchID) { return try summarisedCounts(batchID: batchID, grouping: "verdict") }
        let rows = try connection.query("""
            SELECT verdict, worst_case, records FROM oversight.assessment_summary WHERE batch_id = \(batchID)::uuid
            ORDER BY records DESC, verdict, worst_case
            """)
        return (0..<rows.rowCount).map { VerdictCount(key: "", verdict: rows.string($0, 0)!, worstCase: rows.string($0, 1), records: rows.int64($0, 2)!) }
    }

    public enum Grouping: Sendable { case system, region, applicability }

    /// The batch's records by system (type, else name) or by operator region (country and
    /// state or region), settled verdict and worst case.
    public func verdictCounts(batchID: BatchID, by grouping: Grouping) throws -> [VerdictCount] {
        if try isSummarised(batchID: batchID) {
            switch grouping {
            case .system: return try summarisedCounts(batchID: batchID, grouping: "system")
            case .region: return try summarisedCounts(batchID: batchID, grouping: "region")
            case .applicability: return try summarisedCounts(batchID: batchID, grouping: "applies")
            }
        }
        let rows: PGResult
        switch grouping {
        case .system:
            rows = try connection.query("""
                SELECT COALESCE(system, 'not stated'), verdict, worst_case, count(*) FROM oversight.record_index
                WHERE batch_id = \(batchID)::uuid GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
                """)
        case .applicability:
            rows = try connection.query("""
                SELECT applies, verdict, worst_case, count(*) FROM oversight.results
                WHERE batch_id = \(batchID)::uuid GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
                """)
        case .region:
            rows = try connection.query("""
                SELECT COALESCE(country, 'country not stated') || COALESCE(' / ' || region, ''), verdict, worst_case, count(*)
                FROM oversight.record_index WHERE batch_id = \(batchID)::uuid GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
                """)
        }
        return (0..<rows.rowCount).map { VerdictCount(key: rows.string($0, 0)!, verdict: rows.string($0, 1)!, worstCase: rows.string($0, 2), records: rows.int64($0, 3)!) }
    }

    private func summarisedCounts(batchID: BatchID, grouping: String) throws -> [VerdictCount] {
        let rows = try connection.query("""
            SELECT key, verdict, worst_case, records FROM oversight.batch_counts_visible
            WHERE batch_id = \(batchID)::uuid AND grouping = \(grouping) ORDER BY records DESC, key, verdict, worst_case
            """)
        return (0..<rows.rowCount).map { VerdictCount(key: rows.string($0, 0)!, verdict: rows.string($0, 1)!, worstCase: rows.string($0, 2), records: rows.int64($0, 3)!) }
    }

    /// The rules that fired for the most records of the batch, with their citation and why.
    public func topRules(batchID: BatchID, limit: Int = 15) throws -> [RuleCount] {
        let summarised = try isSummarised(batchID: batchID)
        let rows = summarised ? try connection.query("""
            SELECT pack, rule, title, citation, severity, rationale, records FROM oversight.batch_rule_counts_visible
            WHERE batch_id = \(batchID)::uuid ORDER BY records DESC, pack, rule LIMIT \(Int64(limit))
            """) : try connection.query("""
            SELECT pack, rule, max(title), max(citation), max(severity), max(rationale), count(DISTINCT seq) AS n
            FROM oversight.findings WHERE batch_id = \(batchID)::uuid AND outcome = 'fired'
            GROUP BY pack, rule ORDER BY n DESC, pack, rule LIMIT \(Int64(limit))
            """)
        return (0..<rows.rowCount).map { i in
            RuleCount(pack: rows.string(i, 0) ?? "", rule: rows.string(i, 1) ?? "", title: rows.string(i, 2) ?? "", citation: rows.string(i, 3) ?? "",
                      severity: rows.string(i, 4) ?? "", rationale: rows.string(i, 5) ?? "", records: rows.int64(i, 6)!)
        }
    }

    /// The open questions asked of the most records (the fact whose answer would settle them).
    public func topQuestions(batchID: BatchID, limit: Int = 10) throws -> [QuestionCount] {
        let rows = try isSummarised(batchID: batchID) ? try connection.query("""
            SELECT field, COALESCE(question, field), records, first FROM oversight.batch_question_counts_visible
            WHERE batch_id = \(batchID)::uuid ORDER BY records DESC, first DESC, field LIMIT \(Int64(limit))
            """) : try connection.query("""
            SELECT fields[1], COALESCE(max(question), fields[1]), count(*) AS n, count(*) FILTER (WHERE rank = 1)
            FROM oversight.questions WHERE batch_id = \(batchID)::uuid
            GROUP BY fields[1] ORDER BY n DESC, 4 DESC, 1 LIMIT \(Int64(limit))
            """)
        return (0..<rows.rowCount).map { i in
            QuestionCount(field: rows.string(i, 0) ?? "", question: rows.string(i, 1) ?? "", records: rows.int64(i, 2)!, first: rows.int64(i, 3)!)
        }
    }

    public func evidenceCounts(batchID: BatchID) throws -> EvidenceCounts {
        let rows = try isSummarised(batchID: batchID) ? try connection.query("""
            SELECT COALESCE(sum(records) FILTER (WHERE key = 'records_with_facts'), 0), COALESCE(sum(records) FILTER (WHERE key = 'facts_used'), 0),
                   COALESCE(sum(records) FILTER (WHERE key = 'resting_on_inferred'), 0)
            FROM oversight.batch_counts_visible WHERE batch_id = \(batchID)::uuid AND grouping = 'evidence'
            """) : try connection.query("""
            SELECT count(*) FILTER (WHERE json_array_length(inferred) > 0), COALESCE(sum(json_array_length(inferred)), 0),
                   count(*) FILTER (WHERE rests_on = 'inferred')
            FROM oversight.results WHERE batch_id = \(batchID)::uuid
            """)
        return EvidenceCounts(recordsWithFacts: rows.int64(0, 0) ?? 0, factsUsed: rows.int64(0, 1) ?? 0, restingOnInferred: rows.int64(0, 2) ?? 0)
    }

    public func rejectionGroups(batchID: BatchID) throws -> [RejectionGroup] {
        let rows = try connection.query("""
            SELECT field, count(*), min(line), (array_agg(message ORDER BY line))[1]
            FROM oversight.rejections WHERE batch_id = \(batchID)::uuid GROUP BY field ORDER BY 2 DESC, 1
            """)
        return (0..<rows.rowCount).map { RejectionGroup(field: rows.string($0, 0)!, records: rows.int64($0, 1)!, firstLine: rows.int64($0, 2)!, message: rows.string($0, 3)!) }
    }

    public func rejections(batchID: BatchID, limit: Int = 100, offset: Int = 0) throws -> [RejectionRow] {
        let rows = try connection.query("""
            SELECT line, field, message, substring(raw from 1 for 2000) FROM oversight.rejections
            WHERE batch_id = \(batchID)::uuid ORDER BY line LIMIT \(Int64(limit)) OFFSET \(Int64(offset))
            """)
        return (0..<rows.rowCount).map { i in
            RejectionRow(line: rows.int64(i, 0)!, field: rows.string(i, 1)!, message: rows.string(i, 2)!,
                         raw: String(decoding: rows.bytes(i, 3) ?? [], as: UTF8.self))
        }
    }

    /// The batch's dead letters (open ones first), each with every attempt's error.
    public func deadLetters(batchID: BatchID, limit: Int = 100) throws -> [DeadLetterRow] {
        deadLetterRows(try connection.query("""
            SELECT seq, line, attempts, last_error, to_char(dead_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), open, failures::text,
                   batch_id::text
            FROM oversight.dead_letter_attempts WHERE batch_id = \(batchID)::uuid ORDER BY open DESC, seq LIMIT \(Int64(limit))
            """))
    }

    /// Rows of `oversight.dead_letter_attempts` selected as `deadLetters` selects them.
    func deadLetterRows(_ rows: PGResult) -> [DeadLetterRow] {
        (0..<rows.rowCount).map { i in
            var attempts: [DeadLetterRow.Attempt] = []
            if let text = rows.string(i, 6), case .array(let items)? = try? JSONParser.parse(text) {
                for item in items {
                    attempts.append(.init(attempt: item["attempt"]?.intValue ?? 0, worker: item["worker"]?.stringValue ?? "",
                                          reason: item["reason"]?.stringValue ?? "", failedAt: item["failed_at"]?.stringValue ?? ""))
                }
            }
            return DeadLetterRow(batchID: rows.batchID(i, 7)!, seq: rows.int64(i, 0)!, line: rows.int64(i, 1), attempts: rows.int(i, 2)!,
                                 lastError: rows.string(i, 3)!, deadAt: rows.string(i, 4)!, open: rows.bool(i, 5)!, failures: attempts)
        }
    }

    /// The batch's records matching `filter`, in seq order, a page at a time.
    /// `after`: only records after this seq (keyset paging, for reading a whole batch).
    public func records(batchID: BatchID, filter: RecordFilter = RecordFilter(), limit: Int = 50, offset: Int = 0, after: Int64? = nil) throws -> [RecordIndexRow] {
        // Lower-cased here as the writers lower-case the text searched (and again by the
        // server, which changes nothing then), whatever the database's locale.
        let pattern = filter.text.map { "%" + $0.lowercased().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%" }
        let summarised = try isListed(batchID: batchID)
        // A rule's records are read from its own index, in seq order (a rare rule's last page
        // scanned the whole batch when the facets led); otherwise the facets' indexes lead.
        // A reader's free text goes through oversight.search_records, which may use the trigram
        // index (under row-level security PostgreSQL uses none for LIKE); the page's rows are
        // then read under the reader policy.
        let underPolicy = try summarised && pattern != nil && connection.query("SELECT oversight.visible_organisation() IS NOT NULL").bool(0, 0) == true
        let rows = underPolicy ? try connection.query("""
            SELECT seq, record_id, verdict, worst_case, determined, applies, rests_on, system, vendor, operator, country, region, first_question
            FROM oversight.record_facets
            WHERE batch_id = \(batchID)::uuid AND seq = ANY(ARRAY(SELECT oversight.search_records(\(batchID)::uuid, \(pattern), \(filter.verdict),
                  \(filter.worstCase), \(filter.system), \(filter.operatorName), \(filter.region), \(filter.rule), \(after), \(Int32(clamping: limit)),
                  \(Int32(clamping: offset)))))
            ORDER BY seq
            """) : summarised && filter.rule != nil ? try connection.query("""
            SELECT DISTINCT ON (f.seq) i.seq, i.record_id, i.verdict, i.worst_case, i.determined, i.applies, i.rests_on, i.system, i.vendor, i.operator,
                   i.country, i.region, i.first_question
            FROM oversight.record_rules f JOIN oversight.record_facets i ON i.batch_id = f.batch_id AND i.seq = f.seq
            WHERE f.batch_id = \(batchID)::uuid AND f.rule = \(filter.rule) AND (\(after)::bigint IS NULL OR f.seq > \(after))
              AND (\(filter.verdict)::text IS NULL OR i.verdict = \(filter.verdict))
              AND (\(filter.worstCase)::text IS NULL OR i.worst_case = \(filter.worstCase))
              AND (\(filter.system)::text IS NULL OR i.system = \(filter.system))
              AND (\(filter.operatorName)::text IS NULL OR i.operator = \(filter.operatorName))
              AND (\(filter.region)::text IS NULL OR i.region = \(filter.region) OR i.country = \(filter.region))
              AND (\(pattern)::text IS NULL OR i.search LIKE lower(\(pattern)))
            ORDER BY f.seq LIMIT \(Int64(limit)) OFFSET \(Int64(offset))
            """) : summarised ? try connection.query("""
            SELECT seq, record_id, verdict, worst_case, determined, applies, rests_on, system, vendor, operator, country, region, first_question
            FROM oversight.record_facets i
            WHERE batch_id = \(batchID)::uuid AND (\(after)::bigint IS NULL OR seq > \(after))
              AND (\(filter.verdict)::text IS NULL OR verdict = \(filter.verdict))
              AND (\(filter.worstCase)::text IS NULL OR worst_case = \(filter.worstCase))
              AND (\(filter.system)::text IS NULL OR system = \(filter.system))
              AND (\(filter.operatorName)::text IS NULL OR operator = \(filter.operatorName))
              AND (\(filter.region)::text IS NULL OR region = \(filter.region) OR country = \(filter.region))
              AND (\(pattern)::text IS NULL OR search LIKE lower(\(pattern)))
            ORDER BY seq LIMIT \(Int64(limit)) OFFSET \(Int64(offset))
            """) : try connection.query("""
            SELECT seq, record_id, verdict, worst_case, determined, applies, rests_on, system, vendor, operator, country, region, first_question
            FROM oversight.record_index i
            WHERE batch_id = \(batchID)::uuid AND (\(after)::bigint IS NULL OR seq > \(after))
              AND (\(filter.verdict)::text IS NULL OR verdict = \(filter.verdict))
              AND (\(filter.worstCase)::text IS NULL OR worst_case = \(filter.worstCase))
              AND (\(filter.system)::text IS NULL OR system = \(filter.system))
              AND (\(filter.operatorName)::text IS NULL OR operator = \(filter.operatorName))
              AND (\(filter.region)::text IS NULL OR region = \(filter.region) OR country = \(filter.region))
              AND (\(pattern)::text IS NULL OR record_id ILIKE \(pattern) OR operator ILIKE \(pattern) OR system ILIKE \(pattern)
                   OR vendor ILIKE \(pattern) OR summary ILIKE \(pattern))
              AND (\(filter.rule)::text IS NULL OR EXISTS (SELECT 1 FROM oversight.findings f
                   WHERE f.batch_id = i.batch_id AND f.seq = i.seq AND f.rule = \(filter.rule) AND f.outcome = 'fired'))
            ORDER BY seq LIMIT \(Int64(limit)) OFFSET \(Int64(offset))
            """)
        return (0..<rows.rowCount).map { i in
            RecordIndexRow(seq: rows.int64(i, 0)!, recordID: rows.string(i, 1), verdict: rows.string(i, 2)!, worstCase: rows.string(i, 3),
                           determined: rows.bool(i, 4), applies: rows.string(i, 5)!, restsOn: rows.string(i, 6)!, system: rows.string(i, 7),
                           vendor: rows.string(i, 8), operatorName: rows.string(i, 9), country: rows.string(i, 10), region: rows.string(i, 11),
                           firstQuestion: rows.string(i, 12))
        }
    }

    /// The seqs of the batch's assessments of the record with this id (more than one when the
    /// id repeats).
    public func seqs(batchID: BatchID, recordID: String) throws -> [Int64] {
        let rows = try connection.query("SELECT seq FROM oversight.results WHERE batch_id = \(batchID)::uuid AND record_id = \(recordID) ORDER BY seq LIMIT 100")
        return (0..<rows.rowCount).map { rows.int64($0, 0)! }
    }

    /// One stored assessment with its record as submitted; nil if the login sees none.
    public func storedResult(batchID: BatchID, seq: Int64) throws -> StoredResult? {
        let rows = try connection.query("""
            SELECT r.seq, r.record_id, s.record, r.result::text, r.criteria_sha256, r.input_sha256, r.row_sha256, to_char(r.as_of, 'YYYY-MM-DD'), r.engine
            FROM oversight.results r JOIN oversight.submitted_records s USING (batch_id, seq)
            WHERE r.batch_id = \(batchID)::uuid AND r.seq = \(seq)
            """)
        guard rows.rowCount == 1 else { return nil }
        return StoredResult(seq: rows.int64(0, 0)!, recordID: rows.string(0, 1), record: rows.textBytes(0, 2) ?? [], result: rows.textBytes(0, 3) ?? [],
                            criteriaSHA256: rows.bytes(0, 4) ?? [], inputSHA256: rows.bytes(0, 5) ?? [], rowSHA256: rows.bytes(0, 6) ?? [],
                            asOf: rows.string(0, 7), engine: rows.string(0, 8)!)
    }

    /// The login this connection uses.
    public func currentLogin() throws -> String {
        try connection.query("SELECT current_user::text").string(0, 0) ?? ""
    }

    /// The batch's seals as the reader view shows them, oldest first.
    public func sealsVisible(batchID: BatchID) throws -> [(seal: Int, merkleRoot: String, signingKey: [UInt8], sealedAt: String, assessments: Int64)] {
        let rows = try connection.query("""
            SELECT seal, merkle_root, signing_key, to_char(sealed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), assessments
            FROM oversight.seals WHERE batch_id = \(batchID)::uuid ORDER BY seal
            """)
        return (0..<rows.rowCount).map { i in
            (rows.int(i, 0)!, rows.string(i, 1)!, [UInt8](hex: rows.string(i, 2)!) ?? [], rows.string(i, 3)!, rows.int64(i, 4)!)
        }
    }

    /// The criteria set of a batch, through the reader views: every pack compiled and checked
    /// against its hash, the set against the batch's. nil if the login sees no such batch.
    public func criteriaSet(batchID: BatchID) throws -> CriteriaSet? {
        let rows = try connection.query("""
            SELECT p.sha256, p.body::text, b.criteria_sha256 FROM oversight.batch_packs p JOIN oversight.visible_batches b USING (batch_id)
            WHERE p.batch_id = \(batchID)::uuid ORDER BY p.position
            """)
        guard rows.rowCount > 0 else { return nil }
        var packs: [CriteriaPack] = []
        for i in 0..<rows.rowCount {
            let pack = try CriteriaPack(json: rows.string(i, 1)!)
            guard pack.sha256 == rows.bytes(i, 0) else {
                throw StoreError(message: "criteria pack \(pack.id) does not hash to its key: the stored pack was altered")
            }
            packs.append(pack)
        }
        let set = CriteriaSet(packs)
        guard set.sha256 == rows.bytes(0, 2) else {
            throw StoreError(message: "the criteria set of batch \(batchID) does not hash to its key: the stored set was altered")
        }
        return set
    }
}
