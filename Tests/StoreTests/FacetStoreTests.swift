import Identifiers
import Foundation
import Testing
import Assessment
@testable import AuditStore
import LibPQ
import TestSupport

/// The facets a worker writes with its results (what record lists filter on and a batch's
/// summary adds up), against what `oversight.summarise_batch` derives from the stored JSON for
/// results written without them.
@Suite struct FacetStoreTests {
    let set = CriteriaSet.builtIn

    /// Synthetic records, some with a summary whose text the evidence pack reads (inferred
    /// facts), some with an operator region, and text that COPY and array literals must escape.
    func records(_ count: Int) -> [JSONValue] {
        let phrases = ["The City Police uses Live Face Recognition at the station", "Predictive policing \"heat list\" of residents",
                       "ALPR cameras\tread plates\non the bridge", #"A back\slash and a {brace}, "quoted""#]
        return SyntheticDeployments(count: count, seed: 9).enumerated().map { i, base in
            var record = base
            if i % 3 == 0 { record.set(path: ["summary"], .string(phrases[i % phrases.count])) }
            if i % 4 == 1 { record.set(path: ["operator", "region"], .string(i % 8 == 1 ? "CA" : "Île-de-France")) }
            return EvidencePack.builtIn.annotate(record, .all)
        }
    }

    func storedBatch(_ store: AuditStore, _ records: [JSONValue]) throws -> BatchID {
        let id = BatchID()
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "local", criteriaSHA256: set.sha256, asOf: testDate)
        let accepted = records.enumerated().map { AcceptedRecord(seq: Int64($0 + 1), line: Int64($0 + 1), record: $1.canonicalBytes) }
        _ = try store.storeChunk(batchID: id, number: 1, accepted: accepted, rejected: [])
        let rows = records.enumerated().map { i, record in
            AssessmentRow(batchID: id, seq: Int64(i + 1), record: record, result: set.assess(record, asOf: testDate),
                          criteriaSHA256: set.sha256, inputSHA256: AuditHash.input(record), attempt: 1)
        }
        // In bundles, as workers write them.
        for start in stride(from: 0, to: rows.count, by: 64) {
            try store.writeAssessments(batchID: id, criteriaSHA256: set.sha256, worker: "w", rows: Array(rows[start..<min(start + 64, rows.count)]))
        }
        try store.closeIntake(batchID: id, chunks: 1)
        _ = try store.markCompletedIfDone(batchID: id)
        #expect(try store.seal(batchID: id, key: SealKey()) == .sealed(1))
        return id
    }

    /// Every facet and fired rule of the batch, and every count its summary holds, as text.
    func summaryRows(_ store: AuditStore, _ id: BatchID) throws -> [String: [String]] {
        func rows(_ sql: PGQuery) throws -> [String] {
            let result = try store.connection.query(sql)
            return (0..<result.rowCount).map { r in (0..<result.columnCount).map { result.string(r, $0) ?? "∅" }.joined(separator: " | ") }
        }
        return [
            "facets": try rows("""
                SELECT seq, record_id, verdict, worst_case, determined, applies, rests_on, inferred_facts, system, vendor, operator,
                       country, region, first_question, search, questions
                FROM oversight.record_facets WHERE batch_id = \(id)::uuid ORDER BY seq
                """),
            "rules": try rows("SELECT rule, seq, pack FROM oversight.record_rules WHERE batch_id = \(id)::uuid ORDER BY rule, seq, pack"),
            "counts": try rows("""
                SELECT grouping, key, verdict, worst_case, records FROM oversight.batch_counts WHERE batch_id = \(id)::uuid
                ORDER BY grouping, key, verdict, worst_case
                """),
            "rule counts": try rows("""
                SELECT pack, rule, title, citation, severity, rationale, records FROM oversight.batch_rule_counts
                WHERE batch_id = \(id)::uuid ORDER BY pack, rule
                """),
            "question counts": try rows("""
                SELECT field, question, records, first FROM oversight.batch_question_counts WHERE batch_id = \(id)::uuid ORDER BY field
                """),
        ]
    }

    @Test func theWritersFacetsAreWhatTheStoredResultsSay() throws {
        let store = try migratedStore("writerfacets")
        let records = records(300)
        let id = try storedBatch(store, records)
        #expect(try store.connection.query("SELECT count(*) FROM oversight.pending_facets WHERE batch_id = \(id)::uuid").int(0, 0) == 300,
                "written with the results, before any summary")
        #expect(try store.connection.query("SELECT count(*) FROM oversight.record_facets WHERE batch_id = \(id)::uuid").int(0, 0) == 0)
        // Step 1: the counts, from the pending facets; the record lists still read the live
        // views, and give the same page as they will from the facets.
        let live = try store.records(batchID: id, filter: RecordFilter(verdict: "high_risk"), limit: 20)
        #expect(try store.summariseCounts(batchID: id) == 300)
        #expect(try store.isSummarised(batchID: id) && !store.isListed(batchID: id))
        let counted = try store.verdictCounts(batchID: id)
        #expect(counted.reduce(0) { $0 + $1.records } == 300)
        // Step 2: the facets move into the indexed tables.
        #expect(try store.listRecords(batchID: id) == 300)
        #expect(try store.isListed(batchID: id))
        #expect(try store.connection.query("SELECT count(*) FROM oversight.pending_facets WHERE batch_id = \(id)::uuid").int(0, 0) == 0,
                "moved by the summary")
        #expect(try store.verdictCounts(batchID: id) == counted)
        let listed = try store.records(batchID: id, filter: RecordFilter(verdict: "high_risk"), limit: 20)
        #expect(!listed.isEmpty && listed.map(\.seq) == live.map(\.seq) && listed.map(\.operatorName) == live.map(\.operatorName))
        let written = try summaryRows(store, id)
        // What the records hold shows up: inferred facts, regions, several packs' rules, the
        // text's escapes, questions.
        #expect(try store.connection.query("SELECT count(*) FROM oversight.record_facets WHERE batch_id = \(id)::uuid AND inferred_facts > 0").int(0, 0)! > 0)
        #expect(try store.connection.query("SELECT count(DISTINCT pack) FROM oversight.record_rules WHERE batch_id = \(id)::uuid").int(0, 0)! > 1)
        #expect(try store.connection.query("SELECT count(*) FROM oversight.record_facets WHERE batch_id = \(id)::uuid AND search LIKE '%back\\\\slash%\"quoted\"%'").int(0, 0)! > 0)
        #expect(try store.connection.query("SELECT count(*) FROM oversight.record_facets WHERE batch_id = \(id)::uuid AND search LIKE E'%cameras\\tread plates\\non%'").int(0, 0)! > 0)
        #expect(written["question counts"]!.count > 3)
        #expect(written["rule counts"]!.allSatisfy { !$0.contains("∅") }, "every rule counted has its pack's words")

        // The same batch as results written without facets (by an older worker): half of them,
        // then all, derived again from the stored JSON, give the same rows and counts.
        try store.connection.query("DELETE FROM oversight.record_facets WHERE batch_id = \(id)::uuid AND seq % 2 = 0")
        try store.connection.query("DELETE FROM oversight.record_rules WHERE batch_id = \(id)::uuid AND seq % 2 = 0")
        #expect(try store.summarise(batchID: id) == 300)
        #expect(try summaryRows(store, id) == written)
        try store.connection.query("DELETE FROM oversight.record_facets WHERE batch_id = \(id)::uuid")
        try store.connection.query("DELETE FROM oversight.record_rules WHERE batch_id = \(id)::uuid")
        #expect(try store.summarise(batchID: id) == 300)
        let derived = try summaryRows(store, id)
        for key in written.keys { #expect(derived[key] == written[key], "\(key)") }
    }

    /// A free-text field may hold NUL (the stored record keeps it); its facet shows U+FFFD and
    /// the batch is summarised all the same.
    @Test func aNulInFreeTextIsShownAsAReplacementCharacter() throws {
        let store = try migratedStore("facetnul")
        var record = Array(SyntheticDeployments(count: 1, seed: 3))[0]
        record.set(path: ["operator", "name"], .string("Agency\u{0}One"))
        let id = try storedBatch(store, [record])
        #expect(try store.summarise(batchID: id) == 1)
        #expect(try store.connection.query("SELECT operator FROM oversight.record_facets WHERE batch_id = \(id)::uuid").string(0, 0) == "Agency\u{FFFD}One")
    }

    /// A worker appends facets under its own role (row-level security, no COPY into the table,
    /// a redelivered bundle written twice) and reads none back.
    @Test func aWorkerAppendsFacetsAndReadsNone() throws {
        let store = try migratedStore("facetworker")
        let records = Array(SyntheticDeployments(count: 20, seed: 4))
        let id = BatchID()
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "amnesty", criteriaSHA256: set.sha256, asOf: testDate)
        let accepted = records.enumerated().map { AcceptedRecord(seq: Int64($0 + 1), line: Int64($0 + 1), record: $1.canonicalBytes) }
        _ = try store.storeChunk(batchID: id, number: 1, accepted: accepted, rejected: [])
        let rows = records.enumerated().map { i, record in
            AssessmentRow(batchID: id, seq: Int64(i + 1), record: record, result: set.assess(record, asOf: testDate),
                          criteriaSHA256: set.sha256, inputSHA256: AuditHash.input(record), attempt: 1)
        }
        try store.connection.runScript("SET ROLE oversight_worker")
        #expect(try store.writeAssessments(batchID: id, criteriaSHA256: set.sha256, worker: "w", rows: Array(rows[0..<12])) == 12)
        #expect(try store.writeAssessments(batchID: id, criteriaSHA256: set.sha256, worker: "w", rows: rows) == 8, "a redelivered bundle adds only the new rows")
        for table in ["pending_facets", "record_facets", "record_rules"] {
            #expect(throws: PQError.self, "\(table)") { try store.connection.runScript("SELECT * FROM oversight.\(table)") }
            #expect(throws: PQError.self, "\(table)") { try store.connection.runScript("DELETE FROM oversight.\(table)") }
        }
        // The indexed tables are the summary's: a worker cannot write them.
        #expect(throws: PQError.self) {
            try store.connection.runScript("INSERT INTO oversight.record_rules (batch_id, rule, seq, pack) VALUES ('\(id)', 'r', 1, 1)")
        }
        #expect(throws: PQError.self) {
            try store.connection.runScript("""
                INSERT INTO oversight.record_facets (batch_id, seq, verdict, applies, rests_on, inferred_facts) VALUES ('\(id)', 1, 'v', 'a', 'declared', 0)
                """)
        }
        try store.connection.runScript("RESET ROLE")
        let pending = try store.connection.query("SELECT count(*), count(DISTINCT seq) FROM oversight.pending_facets WHERE batch_id = \(id)::uuid")
        #expect(pending.int(0, 0) == 20 && pending.int(0, 1) == 20, "one facet row per assessment, none for the redelivered rows")

        // Summarised after a seal: the facets move into the indexed tables. Summarised again
        // with some of them pending a second time (a summary cut off after the move, say):
        // nothing is there twice.
        try store.closeIntake(batchID: id, chunks: 1)
        _ = try store.markCompletedIfDone(batchID: id)
        #expect(try store.seal(batchID: id, key: SealKey()) == .sealed(1))
        #expect(try store.summarise(batchID: id) == 20)
        let rules = try store.connection.query("SELECT count(*) FROM oversight.record_rules WHERE batch_id = \(id)::uuid").int(0, 0)
        #expect(rules == rows.reduce(0) { $0 + $1.facets.fired.count })
        try store.connection.runScript("""
            INSERT INTO oversight.pending_facets
            SELECT batch_id, seq, record_id, verdict, worst_case, determined, applies, rests_on, inferred_facts, system, vendor, operator,
                   country, region, first_question, search, questions,
                   ARRAY(SELECT r.pack || ' ' || r.rule FROM oversight.record_rules r WHERE r.batch_id = f.batch_id AND r.seq = f.seq)
            FROM oversight.record_facets f WHERE seq > 15
            """)
        #expect(try store.summarise(batchID: id) == 20)
        let facets = try store.connection.query("SELECT count(*), count(DISTINCT seq) FROM oversight.record_facets WHERE batch_id = \(id)::uuid")
        #expect(facets.int(0, 0) == 20 && facets.int(0, 1) == 20)
        #expect(try store.connection.query("SELECT count(*) FROM oversight.record_rules WHERE batch_id = \(id)::uuid").int(0, 0) == rules)
        #expect(try store.connection.query("SELECT count(*) FROM oversight.pending_facets").int(0, 0) == 0)
    }
}
