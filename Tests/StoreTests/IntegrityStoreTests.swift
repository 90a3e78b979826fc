import Identifiers
import Foundation
import Testing
import Assessment
@testable import AuditStore
import LibPQ
import TestSupport

/// A sealed batch never lies: sealing refuses an incomplete batch, a seal proves completeness,
/// intake ends at CLOSE and CANCEL, a completed batch is final, failures are kept once per attempt,
/// rejected lines keep their bytes, and the input digest is the chain of what was stored.
@Suite struct IntegrityStoreTests {
    let set = CriteriaSet.builtIn

    /// `count` records stored and closed; `assessed` of them (by seq) given assessments.
    func batch(_ store: AuditStore, count: Int, assessed: Set<Int64>) throws -> BatchID {
        let id = BatchID()
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "local", criteriaSHA256: set.sha256, asOf: testDate)
        let records = Array(SyntheticDeployments(count: count, seed: 5))
        let accepted = records.enumerated().map { AcceptedRecord(seq: Int64($0 + 1), line: Int64($0 + 1), record: $1.canonicalBytes) }
        _ = try store.storeChunk(batchID: id, number: 1, accepted: accepted, rejected: [])
        try store.closeIntake(batchID: id, chunks: 1)
        let rows = records.enumerated().filter { assessed.contains(Int64($0.offset + 1)) }.map { i, record in
            AssessmentRow(batchID: id, seq: Int64(i + 1), record: record, result: set.assess(record, asOf: testDate),
                          criteriaSHA256: set.sha256, inputSHA256: AuditHash.input(record), attempt: 1)
        }
        try store.writeAssessments(batchID: id, criteriaSHA256: set.sha256, worker: "w", rows: rows)
        return id
    }

    @Test func anIncompleteBatchIsNeverSealedAndACompleteSealProvesItsCounts() throws {
        let store = try migratedStore("sealcomplete")
        let id = try batch(store, count: 300, assessed: Set(1...300).subtracting([7, 150, 300]))
        let key = SealKey()
        #expect(try store.seal(batchID: id, key: key) == .incomplete(assessed: 297, deadLettered: 0, missing: [7, 150, 300], intakeClosed: true))
        #expect(try store.seals(batchID: id).isEmpty)
        // Given up on: now the batch is complete, and the seal says how.
        for seq in [7, 150, 300] as [Int64] {
            try store.deadLetter(DeadLetter(batchID: id, seq: seq, attempts: 3, lastError: "boom"))
        }
        #expect(try store.seal(batchID: id, key: key) == .sealed(1))
        let seal = try #require(try store.seals(batchID: id).first)
        #expect(seal.statementVersion == 2 && seal.accepted == 300 && seal.assessments == 297 && seal.deadLettered == 3)
        #expect(seal.deadLetterSeqs == [7, 150, 300])
        let report = try #require(try store.verify(batchID: id, trustedKey: key.publicKey))
        #expect(report.ok, "\(report.problems)")
        // The signed counts cannot be changed.
        try store.connection.query("ALTER TABLE oversight.batch_seals DISABLE TRIGGER USER")
        try store.connection.query("UPDATE oversight.batch_seals SET rejected = 5 WHERE batch_id = \(id)::uuid")
        try store.connection.query("ALTER TABLE oversight.batch_seals ENABLE TRIGGER USER")
        let tampered = try #require(try store.verify(batchID: id, trustedKey: nil))
        #expect(tampered.problems.contains { if case .seal(let m) = $0 { m.contains("signature does not verify") } else { false } })
    }

    @Test func verifyFailsASealThatDoesNotCoverEveryAcceptedJob() throws {
        let store = try migratedStore("sealcover")
        let id = try batch(store, count: 20, assessed: Set(1...20))
        _ = try store.seal(batchID: id, key: SealKey())
        // A job slipped in after the seal (as a CHUNK after CLOSE once could): not covered.
        try store.connection.query("ALTER TABLE oversight.jobs DISABLE TRIGGER USER")
        try store.connection.query("INSERT INTO oversight.jobs (batch_id, seq, line, record) VALUES (\(id)::uuid, 21, 21, '{}')")
        try store.connection.query("UPDATE oversight.batches SET accepted = 21 WHERE batch_id = \(id)::uuid")
        let report = try #require(try store.verify(batchID: id, trustedKey: nil))
        #expect(!report.ok)
        #expect(report.problems.contains { if case .seal(let m) = $0 { m.contains("21 accepted") } else { false } }, "\(report.problems)")
    }

    @Test func intakeEndsAtCloseAndCancelAndACompletedBatchIsFinal() throws {
        let store = try migratedStore("final")
        let id = try batch(store, count: 3, assessed: [1, 2, 3])
        let more = [AcceptedRecord(seq: 4, line: 4, record: Array("{}".utf8))]
        #expect(throws: BatchClosed.self) { _ = try store.storeChunk(batchID: id, number: 2, accepted: more, rejected: []) }
        #expect(try store.batch(id: id)?.accepted == 3)
        #expect(try store.markCompletedIfDone(batchID: id))
        #expect(throws: BatchRefusal.self) { try store.cancel(batchID: id) }
        #expect(throws: BatchRefusal.self) { _ = try store.retryDeadLetters(batchID: id) }
        #expect(try store.batch(id: id)?.completed == true)
        #expect(try store.batch(id: id)?.cancelled == false)

        let open = BatchID()
        _ = try store.openBatch(id: open, name: "c", source: "s", organisation: "local", criteriaSHA256: set.sha256, asOf: testDate)
        #expect(throws: BatchRefusal.self, "no records: not closed") { try store.closeIntake(batchID: open, chunks: 0) }
        try store.cancel(batchID: open)
        #expect(throws: BatchClosed.self) { _ = try store.storeChunk(batchID: open, number: 1, accepted: more, rejected: []) }
    }

    @Test func aRetryOfACompletedBatchReopensOnlyItsDeadLettersAndEndsInTheNextSeal() throws {
        let store = try migratedStore("retryseal")
        let id = try batch(store, count: 10, assessed: Set(1...9))
        try store.deadLetter(DeadLetter(batchID: id, seq: 10, attempts: 3, lastError: "boom"))
        let key = SealKey()
        #expect(try store.seal(batchID: id, key: key) == .sealed(1))
        #expect(try store.markCompletedIfDone(batchID: id))
        #expect(try store.retryDeadLetters(batchID: id) == 1)
        #expect(try store.batch(id: id)?.completed == false)
        #expect(try store.seal(batchID: id, key: key) == .incomplete(assessed: 9, deadLettered: 0, missing: [10], intakeClosed: true))
        let record = Array(SyntheticDeployments(count: 10, seed: 5))[9]
        try store.writeAssessments(batchID: id, criteriaSHA256: set.sha256, worker: "w", rows: [
            AssessmentRow(batchID: id, seq: 10, record: record, result: set.assess(record, asOf: testDate),
                          criteriaSHA256: set.sha256, inputSHA256: AuditHash.input(record), attempt: 4)])
        #expect(try store.seal(batchID: id, key: key) == .sealed(2))
        let report = try #require(try store.verify(batchID: id, trustedKey: key.publicKey))
        #expect(report.ok, "\(report.problems)")
        #expect(report.sealsChecked.map(\.seal) == [1, 2])
        #expect(try store.verify(batchID: id, trustedKey: key.publicKey, seal: 1)?.ok == true, "seal 1 stays valid for what it covered")
    }

    /// Giving a job up is checked against the store: a job assessed after all gets no dead letter.
    @Test func aJobAssessedAfterAllIsNotGivenUp() throws {
        let store = try migratedStore("moot")
        let id = try batch(store, count: 2, assessed: [1])
        #expect(try store.deadLetter(DeadLetter(batchID: id, seq: 1, attempts: 3, lastError: "presumed dead")) == false)
        #expect(try store.deadLetter(DeadLetter(batchID: id, seq: 2, attempts: 3, lastError: "boom")) == true)
        #expect(try store.activeDeadLetterCount(batchID: id) == 1)
        #expect(try store.connection.query("SELECT count(*) FROM oversight.dead_letters WHERE batch_id = \(id)::uuid").int(0, 0) == 1)
    }

    @Test func failuresAreKeptOncePerAttempt() throws {
        let store = try migratedStore("failures")
        let id = try batch(store, count: 1, assessed: [])
        for _ in 0..<3 { try store.recordFailure(batchID: id, seq: 1, attempt: 1, worker: "w", reason: "boom") }
        try store.recordFailure(batchID: id, seq: 1, attempt: 2, worker: "w", reason: "boom")
        #expect(try store.connection.query("SELECT count(*) FROM oversight.job_failures WHERE batch_id = \(id)::uuid").int(0, 0) == 2)
    }

    @Test func rejectedLinesKeepTheirBytesAndTheInputDigestChainsEveryLine() throws {
        let store = try migratedStore("rawbytes")
        let id = BatchID()
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "local", criteriaSHA256: set.sha256, asOf: testDate)
        let binary: [UInt8] = [0x7B, 0x00, 0xFF, 0xFE, 0x22, 0x0A, 0x5C]
        let huge = [UInt8](repeating: 0x61, count: 200_000)
        let lines: [(line: Int64, kind: UInt8, bytes: [UInt8])] = [(1, 0, Array("{}".utf8)), (2, 1, binary), (3, 1, huge)]
        #expect(try store.storeChunk(batchID: id, number: 1, digested: lines,
                                     accepted: [AcceptedRecord(seq: 1, line: 1, record: Array("{}".utf8))],
                                     rejected: [RejectedRecord(line: 2, field: "", message: "bad", raw: binary),
                                                RejectedRecord(line: 3, field: "", message: "big", raw: huge)]))
        let rows = try store.connection.query("""
            SELECT raw, raw_bytes, raw_sha256, raw_truncated FROM oversight.rejections WHERE batch_id = \(id)::uuid ORDER BY line
            """)
        #expect(rows.bytes(0, 0) == binary)
        #expect(rows.int64(0, 1) == 7 && rows.bytes(0, 2) == AuditHash.sha256(binary) && rows.bool(0, 3) == false)
        #expect(rows.bytes(1, 0) == Array(huge.prefix(RejectedRecord.keptRawBytes)))
        #expect(rows.int64(1, 1) == 200_000 && rows.bytes(1, 2) == AuditHash.sha256(huge) && rows.bool(1, 3) == true)
        var expected = InputDigest.empty
        for l in lines { expected.append(line: l.line, kind: l.kind, bytes: l.bytes) }
        #expect(try store.batch(id: id)?.input == expected)
        #expect(expected.lastLine == 3)
    }
}
