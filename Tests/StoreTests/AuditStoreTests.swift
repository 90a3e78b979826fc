import Identifiers
import Testing
import Assessment
@testable import AuditStore
import LibPQ
import TestSupport

@Suite struct AuditStoreTests {
    let pack = CriteriaSet.builtIn

    @Test func migrationsAreIdempotentAndVersioned() throws {
        let store = try migratedStore("migrate")
        let again = try Migrator.migrate(store.connection)
        #expect(again.applied.isEmpty)
        #expect(try store.connection.query("SELECT count(*) FROM oversight.schema_migrations").int(0, 0) == Migrator.migrations.count)
    }

    @Test func assessmentsAreAppendOnly() throws {
        let store = try migratedStore("appendonly")
        let id = BatchID("6b0d1c6e-1f7a-4b8e-9d2c-3a4b5c6d7e8f")!
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "local", criteriaSHA256: pack.sha256, asOf: testDate)
        let record = try JSONParser.parse(#"{"system":{"type":"alpr"}}"#)
        let row = AssessmentRow(batchID: id, seq: 1, record: record, result: pack.assess(record, asOf: testDate), criteriaSHA256: pack.sha256,
                                inputSHA256: AuditHash.input(record), attempt: 1)
        try store.writeAssessments(batchID: id, criteriaSHA256: pack.sha256, worker: "w", rows: [row])
        for statement: PGQuery in ["UPDATE oversight.assessments SET score = 0", "DELETE FROM oversight.assessments",
                                   "TRUNCATE oversight.assessments"] {
            #expect {
                try store.connection.query(statement)
            } throws: { error in
                guard let e = error as? PQError else { return false }
                return e.sqlState == "42501" && e.message.contains("append-only")
            }
        }
        #expect(try store.assessedCount(batchID: id) == 1)
    }

    @Test func duplicateDeliveryMakesNoSecondRow() throws {
        let store = try migratedStore("dupes")
        let id = BatchID("0a0d1c6e-1f7a-4b8e-9d2c-3a4b5c6d7e8f")!
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "local", criteriaSHA256: pack.sha256, asOf: testDate)
        let rows = SyntheticDeployments(count: 100).enumerated().map { i, record in
            AssessmentRow(batchID: id, seq: Int64(i + 1), record: record, result: pack.assess(record, asOf: testDate), criteriaSHA256: pack.sha256,
                          inputSHA256: AuditHash.input(record), attempt: 1)
        }
        #expect(try store.writeAssessments(batchID: id, criteriaSHA256: pack.sha256, worker: "w1", rows: Array(rows[0..<60])) == 60)
        #expect(try store.writeAssessments(batchID: id, criteriaSHA256: pack.sha256, worker: "w2", rows: rows) == 40)
        #expect(try store.assessedCount(batchID: id) == 100)
        let check = try store.connection.query("SELECT count(DISTINCT row_sha256), count(*) FILTER (WHERE worker = 'w2') FROM oversight.assessments")
        #expect(check.int(0, 0) == 100)
        #expect(check.int(0, 1) == 40)
    }

    @Test func chunksAreStoredOnceAndInOrder() throws {
        let store = try migratedStore("chunks")
        let id = BatchID("1a0d1c6e-1f7a-4b8e-9d2c-3a4b5c6d7e8f")!
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "local", criteriaSHA256: pack.sha256, asOf: testDate)
        let accepted = (1...3).map { AcceptedRecord(seq: Int64($0), line: Int64($0), record: Array("{\"id\":\"\($0)\"}".utf8)) }
        let rejected = [RejectedRecord(line: 4, field: "system.type", message: "bad", raw: [0x7B, 0x00, 0xFF])]
        #expect(try store.storeChunk(batchID: id, number: 1, accepted: accepted, rejected: rejected))
        #expect(try store.storeChunk(batchID: id, number: 1, accepted: accepted, rejected: rejected) == false)
        #expect(throws: ChunkOutOfOrder.self) { try store.storeChunk(batchID: id, number: 3, accepted: [], rejected: []) }
        let batch = try #require(try store.batch(id: id))
        #expect(batch.acknowledgedChunks == 1)
        #expect(batch.nextSeq == 4)
        #expect(batch.accepted == 3)
        #expect(batch.rejected == 1)
        let page = try store.pendingJobs(batchID: id, afterSeq: 0, limit: 10)
        #expect(page.jobs.map(\.seq) == [1, 2, 3])
        #expect(page.exhausted)
    }

    /// A batch of `jobs` generated records, stored, of which those at `assessed` (0-based) are
    /// assessed; their rows.
    @discardableResult
    func batch(_ store: AuditStore, id: BatchID, jobs: Int, assessed: [Int]) throws -> [AssessmentRow] {
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "local", criteriaSHA256: pack.sha256, asOf: testDate)
        let records = Array(SyntheticDeployments(count: jobs))
        let accepted = records.enumerated().map { AcceptedRecord(seq: Int64($0 + 1), line: Int64($0 + 1), record: $1.canonicalBytes) }
        _ = try store.storeChunk(batchID: id, number: 1, accepted: accepted, rejected: [])
        let rows = assessed.map { i in
            AssessmentRow(batchID: id, seq: Int64(i + 1), record: records[i], result: pack.assess(records[i], asOf: testDate), criteriaSHA256: pack.sha256,
                          inputSHA256: AuditHash.input(records[i]), attempt: 1)
        }
        try store.writeAssessments(batchID: id, criteriaSHA256: pack.sha256, worker: "w", rows: rows)
        return rows
    }

    @Test func pendingJobsSkipAssessedOnesAcrossPages() throws {
        let store = try migratedStore("pending")
        let id = BatchID("2a0d1c6e-1f7a-4b8e-9d2c-3a4b5c6d7e8f")!
        let done = try batch(store, id: id, jobs: 50, assessed: (0..<50).filter { $0 % 3 == 0 })
        let page = try store.pendingJobs(batchID: id, afterSeq: 0, limit: 20)
        #expect(page.jobs.count == 20)
        #expect(page.jobs.allSatisfy { ($0.seq - 1) % 3 != 0 })
        let rest = try store.pendingJobs(batchID: id, afterSeq: page.scannedThrough, limit: 100)
        #expect(page.jobs.count + rest.jobs.count == 50 - done.count)
        #expect(rest.exhausted)
    }

    /// A batch is not recorded completed after `retry` queued its dead letters again, until
    /// those jobs are assessed or given up anew.
    @Test func completionNeedsEveryJobAssessedOrGivenUp() throws {
        let store = try migratedStore("completion")
        let id = BatchID("3b1e2d7f-2a8b-4c9d-8e3f-4b5c6d7e8f90")!
        try batch(store, id: id, jobs: 10, assessed: Array(0..<9))
        func completed() throws -> Bool? {
            try store.connection.query("SELECT completed_at IS NOT NULL FROM oversight.batches WHERE batch_id = \(id)::uuid").bool(0, 0)
        }
        try store.deadLetter(DeadLetter(batchID: id, seq: 10, attempts: 3, lastError: "poison"))
        #expect(try store.markCompletedIfDone(batchID: id))
        #expect(try completed() == true)
        #expect(try store.retryDeadLetters(batchID: id) == 1)
        #expect(try completed() == false)
        #expect(try store.markCompletedIfDone(batchID: id) == false, "its dead letter was queued again")
        #expect(try completed() == false)
        // Given up again: done.
        try store.deadLetter(DeadLetter(batchID: id, seq: 10, attempts: 3, lastError: "poison again"))
        #expect(try store.markCompletedIfDone(batchID: id))
        #expect(try completed() == true)
    }

    @Test func storedCriteriaSetsAreVerifiedAgainstTheirHashes() throws {
        let store = try migratedStore("packs")
        let loaded = try #require(try store.criteriaSet(sha256: pack.sha256))
        #expect(loaded.packs.map(\.id) == pack.packs.map(\.id))
        #expect(try store.criteriaSet(sha256: [UInt8](repeating: 0, count: 32)) == nil)
        // Tampering with a stored pack is detected when it is loaded.
        try store.connection.query("UPDATE oversight.criteria_packs SET body = jsonb_set(body, '{title}', '\"changed\"') WHERE pack_id = 'gdpr-dpia'")
        #expect(throws: StoreError.self) { _ = try store.criteriaSet(sha256: pack.sha256) }
    }
}
