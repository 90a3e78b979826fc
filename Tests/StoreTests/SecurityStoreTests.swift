import Identifiers
import Foundation
import Testing
import Assessment
@testable import AuditStore
import LibPQ
import TestSupport

/// Seals, `audit verify`, the roles' privileges and row-level security, against PostgreSQL.
@Suite struct SecurityStoreTests {
    let set = CriteriaSet.builtIn

    /// A batch of `count` records of `organisation`, stored and assessed as the services would.
    @discardableResult
    func assessedBatch(_ store: AuditStore, organisation: String, count: Int, seed: UInt64 = 1) throws -> BatchID {
        let id = BatchID()
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: organisation, criteriaSHA256: set.sha256, asOf: testDate)
        let records = Array(SyntheticDeployments(count: count, seed: seed))
        let accepted = records.enumerated().map { AcceptedRecord(seq: Int64($0 + 1), line: Int64($0 + 1), record: $1.canonicalBytes) }
        _ = try store.storeChunk(batchID: id, number: 1, accepted: accepted, rejected: [])
        let rows = records.enumerated().map { i, record in
            AssessmentRow(batchID: id, seq: Int64(i + 1), record: record, result: set.assess(record, asOf: testDate),
                          criteriaSHA256: set.sha256, inputSHA256: AuditHash.input(record), attempt: 1)
        }
        try store.writeAssessments(batchID: id, criteriaSHA256: set.sha256, worker: "w", rows: rows)
        try store.closeIntake(batchID: id, chunks: 1)
        _ = try store.markCompletedIfDone(batchID: id)
        return id
    }

    /// Changes rows the way only a superuser could: with the append-only triggers off.
    func tamper(_ store: AuditStore, _ statements: [PGQuery]) throws {
        try store.connection.query("ALTER TABLE oversight.assessments DISABLE TRIGGER USER")
        for statement in statements { try store.connection.query(statement) }
        try store.connection.query("ALTER TABLE oversight.assessments ENABLE TRIGGER USER")
    }

    @Test func verifyReportsProgress() throws {
        let store = try migratedStore("verifyprogress")
        let id = try assessedBatch(store, organisation: "local", count: 20_000)
        _ = try store.seal(batchID: id, key: SealKey())
        var heard: [(Int64, Int64)] = []
        let report = try #require(try store.verify(batchID: id, trustedKey: nil) { heard.append(($0, $1)) })
        #expect(report.ok)
        #expect(heard.map(\.0) == [10_000, 20_000])
        #expect(heard.allSatisfy { $0.1 == 20_000 })

        // Pages are asked for one ahead: a reader that stops early leaves the connection usable.
        struct Enough: Error {}
        var read = 0
        #expect(throws: Enough.self) {
            try store.forEachAssessment(batchID: id) { _ in read += 1; if read == 3 { throw Enough() } }
        }
        var seqs: [Int64] = []
        try store.forEachAssessment(batchID: id) { seqs.append($0.seq) }
        #expect(read == 3 && seqs == Array(1...20_000))
        #expect(try store.verify(batchID: id, trustedKey: nil)?.ok == true)
    }

    @Test func verifyNamesEveryAlteredMissingAndExtraRow() throws {
        let store = try migratedStore("seal")
        let id = try assessedBatch(store, organisation: "amnesty", count: 40)
        let key = SealKey()
        #expect(try store.seal(batchID: id, key: key) == .sealed(1))
        #expect(try store.seal(batchID: id, key: key) == .unchanged, "nothing changed: no second seal")
        let clean = try #require(try store.verify(batchID: id, trustedKey: key.publicKey))
        #expect(clean.ok, "\(clean.problems)")
        #expect(clean.rows == 40)

        try tamper(store, [
            // Content changed, hash left: the row no longer gives its hash.
            "UPDATE oversight.assessments SET result = replace(result::text, '\"score\":', '\"score\":1')::json WHERE batch_id = \(id)::uuid AND seq = 7",
            // A copied column changed.
            "UPDATE oversight.assessments SET verdict = 'minimal', score = 0 WHERE batch_id = \(id)::uuid AND seq = 8 AND verdict <> 'minimal'",
            "UPDATE oversight.assessments SET score = score + 1 WHERE batch_id = \(id)::uuid AND seq = 9",
            "DELETE FROM oversight.assessments WHERE batch_id = \(id)::uuid AND seq = 11",
            """
            INSERT INTO oversight.assessments (batch_id, seq, record_id, verdict, score, applies, criteria_sha256, input_sha256,
                row_sha256, result, engine, worker, attempt)
            SELECT batch_id, 99, record_id, verdict, score, applies, criteria_sha256, input_sha256, row_sha256, result, engine, worker, attempt
            FROM oversight.assessments WHERE batch_id = \(id)::uuid AND seq = 12
            """,
        ])
        let report = try #require(try store.verify(batchID: id, trustedKey: key.publicKey))
        #expect(!report.ok)
        let altered = Set(report.problems.compactMap { if case .altered(let seq, _, _) = $0 { seq } else { nil } })
        #expect(altered.isSuperset(of: [7, 9]))
        #expect(report.problems.contains(.missing(seq: 11)))
        #expect(report.problems.contains { if case .extra(99, _) = $0 { true } else { false } })
        #expect(!altered.contains(10) && !altered.contains(1), "untouched rows are not named")

        // Another key's signature is refused when a trusted key is given.
        let other = try #require(try store.verify(batchID: id, trustedKey: SealKey().publicKey))
        #expect(other.problems.contains(.seal("signed by a key that is not the trusted one")))
    }

    /// A batch folded ahead while it runs is sealed exactly as if it had been read whole: the
    /// same root and leaves (verify recomputes both from the rows), with the folds gone after.
    /// A fold stops at a gap (a job not yet committed) and goes on once it is filled; a fold
    /// whose stored leaves are gone is not used.
    @Test func aBatchFoldedAheadIsSealedAsIfReadWhole() throws {
        let store = try migratedStore("fold")
        func batch(_ count: Int, writing seqs: [ClosedRange<Int>]) throws -> (BatchID, [AssessmentRow]) {
            let id = BatchID()
            _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "amnesty", criteriaSHA256: set.sha256, asOf: testDate)
            let records = Array(SyntheticDeployments(count: count, seed: 4))
            _ = try store.storeChunk(batchID: id, number: 1, accepted: records.enumerated().map {
                AcceptedRecord(seq: Int64($0 + 1), line: Int64($0 + 1), record: $1.canonicalBytes) }, rejected: [])
            try store.closeIntake(batchID: id, chunks: 1)
            let rows = records.enumerated().map { i, record in
                AssessmentRow(batchID: id, seq: Int64(i + 1), record: record, result: set.assess(record, asOf: testDate),
                              criteriaSHA256: set.sha256, inputSHA256: AuditHash.input(record), attempt: 1)
            }
            for range in seqs { try store.writeAssessments(batchID: id, criteriaSHA256: set.sha256, worker: "w", rows: Array(rows[(range.lowerBound - 1)...(range.upperBound - 1)])) }
            return (id, rows)
        }
        let key = SealKey()
        // 1,000 jobs, 1–400 and 551–1,000 committed: the fold stops at the gap.
        let (id, rows) = try batch(1_000, writing: [1...400, 551...1_000])
        var fold = SealFold(page: 100)
        #expect(try store.fold(&fold, batchID: id, pages: 10) == 400)
        #expect(fold.through == 400)
        #expect(try store.fold(&fold, batchID: id, pages: 10) == 0, "seqs 401–550 are not committed")
        #expect(try store.seal(batchID: id, key: key, fold: fold) == .incomplete(assessed: 850, deadLettered: 0, missing: Array(401...550), intakeClosed: true))
        try store.writeAssessments(batchID: id, criteriaSHA256: set.sha256, worker: "w", rows: Array(rows[400..<550]))
        #expect(try store.fold(&fold, batchID: id, pages: 3) == 300, "at most the pages asked for")
        #expect(fold.through == 700)
        #expect(try store.connection.query("SELECT count(*) FROM oversight.seal_folds WHERE batch_id = \(id)::uuid").int(0, 0) == 7)
        _ = try store.markCompletedIfDone(batchID: id)
        #expect(try store.seal(batchID: id, key: key, fold: fold) == .sealed(1))
        #expect(try store.connection.query("SELECT count(*) FROM oversight.seal_folds WHERE batch_id = \(id)::uuid").int(0, 0) == 0)
        let report = try #require(try store.verify(batchID: id, trustedKey: key.publicKey))
        #expect(report.ok && report.rows == 1_000)
        // The same rows sealed whole give the same root and leaves.
        let whole = try #require(try store.seals(batchID: id).last)
        #expect(whole.leaves.map(\.seq) == Array(1...1_000))
        #expect(whole.merkleRoot == MerkleTree.root(rows.map { MerkleTree.leafHash(seq: $0.seq, rowSHA256: $0.rowSHA256) }))
        #expect(whole.leaves.map(\.rowSHA256) == rows.map(\.rowSHA256))

        // A fold whose stored leaves were removed is not trusted: the seal reads every row.
        let (other, otherRows) = try batch(300, writing: [1...300])
        var lost = SealFold(page: 100)
        #expect(try store.fold(&lost, batchID: other, pages: 2) == 200)
        try store.connection.query("DELETE FROM oversight.seal_folds WHERE batch_id = \(other)::uuid AND first_seq = 101")
        _ = try store.markCompletedIfDone(batchID: other)
        #expect(try store.seal(batchID: other, key: key, fold: lost) == .sealed(1))
        let sealed = try #require(try store.seals(batchID: other).last)
        #expect(sealed.leaves.count == 300)
        #expect(sealed.merkleRoot == MerkleTree.root(otherRows.map { MerkleTree.leafHash(seq: $0.seq, rowSHA256: $0.rowSHA256) }))
        #expect(try store.verify(batchID: other, trustedKey: key.publicKey)?.ok == true)

        // The folded leaves are what the seal takes: a row changed after it was folded is sealed
        // as it was read, and verify names it.
        let (third, thirdRows) = try batch(200, writing: [1...200])
        var early = SealFold(page: 100)
        #expect(try store.fold(&early, batchID: third, pages: 1) == 100)
        try tamper(store, ["UPDATE oversight.assessments SET row_sha256 = \([UInt8](repeating: 7, count: 32)) WHERE batch_id = \(third)::uuid AND seq = 50"])
        _ = try store.markCompletedIfDone(batchID: third)
        #expect(try store.seal(batchID: third, key: key, fold: early) == .sealed(1))
        let asRead = try #require(try store.seals(batchID: third).last)
        #expect(asRead.leaves[49].rowSHA256 == thirdRows[49].rowSHA256)
        let named = try #require(try store.verify(batchID: third, trustedKey: key.publicKey))
        #expect(named.problems.contains { if case .altered(seq: 50, _, _) = $0 { true } else { false } })

        // Folds a deposed coordinator left behind after the batch was sealed are dropped.
        try store.connection.query("INSERT INTO oversight.seal_folds VALUES (\(third)::uuid, gen_random_uuid(), 1, ''::bytea)")
        let (running, _) = try batch(100, writing: [1...100])
        var kept = SealFold(page: 100)
        #expect(try store.fold(&kept, batchID: running, pages: 1) == 100)
        #expect(try store.discardSealFoldsOfFinishedBatches() == 1)
        #expect(try store.connection.query("SELECT count(*) FROM oversight.seal_folds WHERE batch_id = \(running)::uuid").int(0, 0) == 1,
                "a running batch's folds are kept")
    }

    @Test func aResealAfterRetryCoversTheNewRowsAndTheSignatureCoversTheOrganisation() throws {
        let store = try migratedStore("reseal")
        let id = try assessedBatch(store, organisation: "amnesty", count: 5)
        let key = SealKey()
        _ = try store.seal(batchID: id, key: key)
        // Moving the batch to another organisation breaks the signature.
        try store.connection.query("UPDATE oversight.batches SET organisation = 'hrw' WHERE batch_id = \(id)::uuid")
        let moved = try #require(try store.verify(batchID: id, trustedKey: nil))
        #expect(moved.problems.contains { if case .seal(let m) = $0 { m.contains("signature does not verify") } else { false } })
        try store.connection.query("UPDATE oversight.batches SET organisation = 'amnesty' WHERE batch_id = \(id)::uuid")
        #expect(try store.verify(batchID: id, trustedKey: nil)?.ok == true)
    }

    /// Every role the schema creates, and a reader login, is refused UPDATE, DELETE and TRUNCATE
    /// on assessments and seals; the owner is refused by the triggers.
    @Test func auditRowsCannotBeChangedByAnyRole() throws {
        let store = try migratedStore("roles")
        let id = try assessedBatch(store, organisation: "amnesty", count: 3)
        _ = try store.seal(batchID: id, key: SealKey())
        let reader = "t_reader_\(UInt32.random(in: 0...UInt32.max))"
        try store.connection.query("SELECT oversight.grant_reader(\(reader), 'amnesty', NULL)")
        defer { dropRole(store, reader) }
        for role in ["oversight_coordinator", "oversight_worker", "oversight_reader", reader, nil] {
            for table in ["assessments", "batch_seals"] {
                for statement in ["UPDATE oversight.\(table) SET batch_id = batch_id", "DELETE FROM oversight.\(table)", "TRUNCATE oversight.\(table)"] {
                    if let role { try store.connection.runScript("SET ROLE \(role)") }
                    #expect(throws: PQError.self, "\(role ?? "owner"): \(statement)") { try store.connection.runScript(statement) }
                    try store.connection.runScript("RESET ROLE")
                }
            }
        }
        #expect(try store.assessedCount(batchID: id) == 3)
    }

    @Test func theServiceRolesCanDoTheirWorkAndNoMore() throws {
        let store = try migratedStore("services")
        try store.connection.runScript("SET ROLE oversight_coordinator")
        let id = BatchID()
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "amnesty", criteriaSHA256: set.sha256, asOf: testDate)
        let record = Array(SyntheticDeployments(count: 1))[0]
        #expect(try store.storeChunk(batchID: id, number: 1, accepted: [AcceptedRecord(seq: 1, line: 1, record: record.canonicalBytes)], rejected: []))
        try store.connection.runScript("SET ROLE oversight_worker")
        #expect(try store.criteriaSet(sha256: set.sha256) != nil)
        let row = AssessmentRow(batchID: id, seq: 1, record: record, result: set.assess(record, asOf: testDate), criteriaSHA256: set.sha256,
                                inputSHA256: AuditHash.input(record), attempt: 1)
        #expect(try store.writeAssessments(batchID: id, criteriaSHA256: set.sha256, worker: "w", rows: [row]) == 1)
        // A worker reads no results, no records, no batches.
        for statement in ["SELECT result FROM oversight.assessments", "SELECT record FROM oversight.jobs", "SELECT * FROM oversight.batches"] {
            #expect(throws: PQError.self, "\(statement)") { try store.connection.runScript(statement) }
        }
        try store.connection.runScript("SET ROLE oversight_coordinator")
        try store.closeIntake(batchID: id, chunks: 1)
        _ = try store.markCompletedIfDone(batchID: id)
        #expect(try store.seal(batchID: id, key: SealKey()) == .sealed(1))
        #expect(throws: PQError.self, "DDL") { try store.connection.runScript("DROP TABLE oversight.jobs") }
        try store.connection.runScript("RESET ROLE")
    }

    /// The autoscaler's role reads the number of jobs waiting, across organisations, and
    /// nothing else: no table, no view, no record.
    @Test func theScalerReadsThePendingCountAndNothingElse() throws {
        let store = try migratedStore("scaler")
        let done = try assessedBatch(store, organisation: "amnesty", count: 30)
        #expect(try store.connection.query("SELECT state FROM oversight.batch_progress WHERE batch_id = \(done)::uuid").string(0, 0) == "completed")
        // A second batch: 40 stored, 25 assessed, 5 given up and one of those assessed after all.
        let id = BatchID()
        _ = try store.openBatch(id: id, name: "b", source: "s", organisation: "privacy-intl", criteriaSHA256: set.sha256, asOf: testDate)
        let records = Array(SyntheticDeployments(count: 40, seed: 9))
        _ = try store.storeChunk(batchID: id, number: 1, accepted: records.enumerated().map { AcceptedRecord(seq: Int64($0 + 1), line: Int64($0 + 1), record: $1.canonicalBytes) }, rejected: [])
        let rows = records.prefix(25).enumerated().map { i, record in
            AssessmentRow(batchID: id, seq: Int64(i + 1), record: record, result: set.assess(record, asOf: testDate),
                          criteriaSHA256: set.sha256, inputSHA256: AuditHash.input(record), attempt: 1)
        }
        try store.writeAssessments(batchID: id, criteriaSHA256: set.sha256, worker: "w", rows: rows)
        for seq in 25...29 { _ = try store.deadLetter(DeadLetter(batchID: id, seq: Int64(seq), attempts: 3, lastError: "test")) }
        try store.connection.runScript("SET ROLE oversight_scaler")
        #expect(try store.connection.query("SELECT oversight.pending_jobs()").int(0, 0) == 40 - 25 - 4)
        for statement in ["SELECT count(*) FROM oversight.jobs", "SELECT count(*) FROM oversight.batches", "SELECT count(*) FROM oversight.assessments",
                          "SELECT count(*) FROM oversight.batch_progress", "SELECT count(*) FROM oversight.dead_letters"] {
            #expect(throws: PQError.self, "\(statement)") { try store.connection.runScript(statement) }
        }
        try store.connection.runScript("RESET ROLE")
    }

    /// An organisation's reader sees its own batches through the views and, under row-level
    /// security, even through tables someone granted it; nothing of another organisation.
    @Test func readersSeeOnlyTheirOrganisation() throws {
        let store = try migratedStore("tenancy")
        let a = try assessedBatch(store, organisation: "amnesty", count: 6, seed: 1)
        let b = try assessedBatch(store, organisation: "hrw", count: 4, seed: 2)
        let suffix = UInt32.random(in: 0...UInt32.max)
        let readerA = "t_anna_\(suffix)", readerB = "t_bob_\(suffix)", stray = "t_stray_\(suffix)"
        try store.connection.query("SELECT oversight.grant_reader(\(readerA), 'amnesty', NULL)")
        try store.connection.query("SELECT oversight.grant_reader(\(readerB), 'hrw', NULL)")
        try store.connection.runScript("CREATE ROLE \(stray) LOGIN IN ROLE oversight_reader")
        defer { for r in [readerA, readerB, stray] { dropRole(store, r) } }
        // Sealed and summarised: readers list records from the facet tables, under a policy.
        for batch in [a, b] {
            #expect(try store.seal(batchID: batch, key: SealKey()) == .sealed(1))
            #expect(try store.summarise(batchID: batch) > 0)
        }

        func setRole(_ role: String?) throws { try store.connection.runScript(role.map { "SET ROLE \($0)" } ?? "RESET ROLE") }
        func ids(_ sql: PGQuery) throws -> Set<BatchID> {
            let rows = try store.connection.query(sql)
            return Set((0..<rows.rowCount).map { BatchID(rows.string($0, 0)!)! })
        }
        try setRole(readerA)
        #expect(try ids("SELECT batch_id::text FROM oversight.batch_progress") == [a])
        #expect(try ids("SELECT DISTINCT batch_id::text FROM oversight.results") == [a])
        #expect(try ids("SELECT DISTINCT batch_id::text FROM oversight.findings") == [a])
        #expect(try ids("SELECT DISTINCT batch_id::text FROM oversight.submitted_records") == [a])
        #expect(try store.connection.query("SELECT count(*) FROM oversight.results WHERE batch_id = \(b)::uuid").int(0, 0) == 0)
        #expect(throws: PQError.self, "views only") { try store.connection.runScript("SELECT * FROM oversight.assessments") }
        #expect(try ids("SELECT DISTINCT batch_id::text FROM oversight.record_facets") == [a])
        #expect(try ids("SELECT DISTINCT batch_id::text FROM oversight.record_rules") == [a])
        #expect(try store.connection.query("SELECT count(*) FROM oversight.record_facets WHERE batch_id = \(b)::uuid").int(0, 0) == 0)
        try setRole(nil)
        try setRole(readerB)
        #expect(try ids("SELECT batch_id::text FROM oversight.batch_progress") == [b])
        #expect(try ids("SELECT DISTINCT batch_id::text FROM oversight.record_facets") == [b])
        #expect(try store.connection.query("SELECT count(*) FROM oversight.results").int(0, 0) == 4)
        try setRole(nil)
        try setRole(stray)
        #expect(try store.connection.query("SELECT count(*) FROM oversight.batch_progress").int(0, 0) == 0, "a reader without a grant sees nothing")
        #expect(try store.connection.query("SELECT count(*) FROM oversight.record_facets").int(0, 0) == 0)
        try setRole(nil)
        // Row-level security holds even if someone grants a reader the tables themselves.
        try store.connection.runScript("GRANT SELECT ON oversight.assessments, oversight.batches, oversight.batch_seals TO \(readerA)")
        try setRole(readerA)
        #expect(try ids("SELECT DISTINCT batch_id::text FROM oversight.assessments") == [a])
        #expect(try ids("SELECT batch_id::text FROM oversight.batches") == [a])
        try setRole(nil)
        // The owner sees everything.
        #expect(try ids("SELECT batch_id::text FROM oversight.batch_progress") == [a, b])
    }

    /// A reader's free text reads the trigram index through oversight.search_records, which
    /// answers only for the batches of the login's own organisation.
    @Test func aReadersSearchAnswersOnlyForItsOrganisation() throws {
        let conninfo = try TestDatabase.create("search")
        let store = try AuditStore(conninfo: conninfo, applicationName: "tests")
        try Migrator.migrate(store.connection)
        try store.register(set)
        let a = try assessedBatch(store, organisation: "amnesty", count: 120, seed: 5)
        let b = try assessedBatch(store, organisation: "hrw", count: 80, seed: 6)
        for batch in [a, b] {
            #expect(try store.seal(batchID: batch, key: SealKey()) == .sealed(1))
            #expect(try store.summarise(batchID: batch) > 0)
        }
        let suffix = UInt32.random(in: 0...UInt32.max)
        let readerA = "t_sa_\(suffix)", readerB = "t_sb_\(suffix)"
        try store.grantReader(role: readerA, organisation: "amnesty", password: "pa-\(suffix)")
        try store.grantReader(role: readerB, organisation: "hrw", password: "pb-\(suffix)")
        defer { for r in [readerA, readerB] { dropRole(store, r) } }
        let asA = try AuditStore(conninfo: try TestDatabase.login(conninfo, user: readerA, password: "pa-\(suffix)"), applicationName: "tests")
        let asB = try AuditStore(conninfo: try TestDatabase.login(conninfo, user: readerB, password: "pb-\(suffix)"), applicationName: "tests")

        // What the owner's plain LIKE finds, page by page and with other filters.
        func expected(_ batch: BatchID, _ text: String, verdict: String? = nil, offset: Int = 0) throws -> [Int64] {
            let rows = try store.connection.query("""
                SELECT seq FROM oversight.record_facets WHERE batch_id = \(batch)::uuid AND search LIKE \("%" + text + "%")
                  AND (\(verdict)::text IS NULL OR verdict = \(verdict)) ORDER BY seq LIMIT 10 OFFSET \(offset)
                """)
            return (0..<rows.rowCount).map { rows.int64($0, 0)! }
        }
        let word = try #require(try store.connection.query("""
            SELECT split_part(operator, ' ', 1) FROM oversight.record_facets WHERE batch_id = \(a)::uuid AND operator IS NOT NULL
            GROUP BY 1 ORDER BY count(*) DESC LIMIT 1
            """).string(0, 0)).lowercased()
        let common = try expected(a, word)
        #expect(!common.isEmpty)
        #expect(try asA.records(batchID: a, filter: RecordFilter(text: word.uppercased()), limit: 10).map(\.seq) == common)
        #expect(try asA.records(batchID: a, filter: RecordFilter(text: word), limit: 10, offset: 10).map(\.seq) == (try expected(a, word, offset: 10)))
        #expect(try asA.records(batchID: a, filter: RecordFilter(verdict: "elevated", text: word), limit: 10).map(\.seq)
                == (try expected(a, word, verdict: "elevated")))
        #expect(try asA.records(batchID: a, filter: RecordFilter(text: "no such words"), limit: 10).isEmpty)

        // Another organisation's batch: nothing through the list, nothing through the function.
        #expect(try asA.records(batchID: b, filter: RecordFilter(text: ""), limit: 10).isEmpty)
        #expect(!(try asB.records(batchID: b, filter: RecordFilter(text: ""), limit: 10)).isEmpty)
        func direct(_ reader: AuditStore, _ batch: BatchID) throws -> Int {
            try reader.connection.query("""
                SELECT count(*) FROM oversight.search_records(\(batch)::uuid, '%', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1000, 0)
                """).int(0, 0)!
        }
        #expect(try direct(asA, a) == 120 && direct(asA, b) == 0 && direct(asB, b) == 80 && direct(asB, a) == 0)
        // A session whose login is not a reader gets nothing from it, whatever role it sets.
        try store.connection.runScript("SET ROLE \(readerA)")
        #expect(try direct(store, a) == 0)
        try store.connection.runScript("RESET ROLE")
        // A batch whose summary is not its newest seal's is not searched.
        try store.connection.query("DELETE FROM oversight.batch_summaries WHERE batch_id = \(a)::uuid")
        #expect(try direct(asA, a) == 0)
    }

    func dropRole(_ store: AuditStore, _ role: String) {
        _ = try? store.connection.runScript("RESET ROLE; DROP OWNED BY \(role); DROP ROLE \(role)")
    }
}
