public import Identifiers
public import Assessment
import LibPQ

/// A stored seal of a batch.
public struct SealRecord: Sendable {
    public let batchID: BatchID
    public let seal: Int
    public let assessments: Int64
    public let merkleRoot: [UInt8]
    /// (seq, row_sha256) of every sealed assessment, in seq order.
    public let leaves: [(seq: Int64, rowSHA256: [UInt8])]
    public let signingKey: [UInt8]
    public let signature: [UInt8]
    /// UTC, ISO 8601 with microseconds: as a version 2 statement signs it.
    public let sealedAt: String
    public let statementVersion: Int
    public let accepted: Int64?
    public let deadLettered: Int64?
    public let rejected: Int64?
    /// The dead-lettered seqs a version 2 seal covers, ascending.
    public let deadLetterSeqs: [Int64]?
    public let deadLetterList: [UInt8]?

    /// Decodes the leaf list (8-byte seq, 32-byte hash); nil if it is not whole records.
    static func leaves(from bytes: [UInt8]) -> [(seq: Int64, rowSHA256: [UInt8])]? {
        guard bytes.count % 40 == 0 else { return nil }
        return stride(from: 0, to: bytes.count, by: 40).map { i in
            let seq = bytes[i..<i + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return (Int64(bitPattern: seq), Array(bytes[i + 8..<i + 40]))
        }
    }
}

/// One assessment as `audit verify` reads it back.
public struct StoredAssessment: Sendable {
    public let seq: Int64
    public let recordID: String?
    public let verdict: String
    /// Engine 4 and later; nil for rows of earlier engines.
    public let worstCase: String?
    public let determined: Bool?
    public let score: Int
    public let applies: String
    public let engine: String
    public let criteriaSHA256: [UInt8]
    public let inputSHA256: [UInt8]
    public let rowSHA256: [UInt8]
    public let result: [UInt8]
    /// The submitted record (nil if its job row is gone).
    public let record: [UInt8]?
}

/// What sealing a batch gave.
public enum SealOutcome: Sendable, Equatable {
    /// A new seal with this number.
    case sealed(Int)
    /// The newest seal already covers exactly these rows and dead letters.
    case unchanged
    /// Not every accepted job has an assessment or an open dead letter (or intake is still
    /// open): nothing was sealed. `missing` lists the first of the uncovered seqs.
    case incomplete(assessed: Int64, deadLettered: Int64, missing: [Int64], intakeClosed: Bool)
}

extension AuditStore {
    /// Seals the batch's assessments as they are now, if and only if the batch is complete:
    /// intake closed and every accepted job assessed or given up (an open dead letter); unless
    /// the newest seal already covers exactly them. One repeatable-read transaction, so nothing
    /// moves under it. The statement (version 2) signs the counts that prove completeness.
    public func seal(batchID: BatchID, key: SealKey) throws -> SealOutcome {
        try connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        do {
            let result = try sealInTransaction(batchID: batchID, key: key)
            try connection.query("COMMIT")
            return result
        } catch {
            _ = try? connection.query("ROLLBACK")
            throw error
        }
    }

    /// How many uncovered seqs an incomplete seal names.
    static let missingListed = 10_000

    private func sealInTransaction(batchID: BatchID, key: SealKey) throws -> SealOutcome {
        let batch = try connection.query("""
            SELECT organisation, criteria_sha256, accepted, rejected, next_seq, intake_closed_at IS NOT NULL,
                   to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            FROM oversight.batches WHERE batch_id = \(batchID)::uuid
            """)
        guard batch.rowCount == 1, let organisation = batch.string(0, 0), let criteria = batch.bytes(0, 1),
              let accepted = batch.int64(0, 2), let rejected = batch.int64(0, 3), let nextSeq = batch.int64(0, 4),
              let sealedAt = batch.string(0, 6) else {
            throw StoreError(message: "cannot seal unknown batch \(batchID)")
        }
        let intakeClosed = batch.bool(0, 5) ?? false
        // Seqs are given out densely from 1 at intake; a batch where that does not hold is not sealed.
        guard nextSeq - 1 == accepted else {
            throw StoreError(message: "batch \(batchID) has \(accepted) accepted jobs but seqs up to \(nextSeq - 1); not sealed")
        }
        let deadRows = try connection.query("""
            SELECT DISTINCT seq FROM oversight.dead_letters WHERE batch_id = \(batchID)::uuid AND retried_at IS NULL
            """)
        var open = Set<Int64>()
        for i in 0..<deadRows.rowCount { open.insert(deadRows.int64(i, 0)!) }
        // Streamed: the tree needs O(log n) memory, and the leaf list is built by the server
        // from the same snapshot, so a million rows cost this process a page at a time. The
        // walk also finds every accepted seq that has no assessment.
        var tree = MerkleTree.Builder()
        var deadLettered: [Int64] = []
        var missing: [Int64] = []
        var missingCount: Int64 = 0
        var expected: Int64 = 1
        func gap(upTo seq: Int64) {
            while expected < seq {
                if open.contains(expected) { deadLettered.append(expected) } else {
                    missingCount += 1
                    if missing.count < Self.missingListed { missing.append(expected) }
                }
                expected += 1
            }
        }
        for (low, high) in try seqRanges(batchID: batchID, step: 50_000) {
            let page = try connection.query("""
                SELECT seq, row_sha256 FROM oversight.assessments
                WHERE batch_id = \(batchID)::uuid AND seq > \(low) AND seq <= \(high) ORDER BY seq
                """)
            for i in 0..<page.rowCount {
                let seq = page.int64(i, 0)!
                gap(upTo: seq)
                expected = max(expected, seq + 1)
                tree.append(leafHash: MerkleTree.leafHash(seq: seq, rowSHA256: page.bytes(i, 1)!))
            }
        }
        gap(upTo: accepted + 1)
        let count = Int64(tree.count)
        guard intakeClosed, missingCount == 0, count + Int64(deadLettered.count) == accepted else {
            return .incomplete(assessed: count, deadLettered: Int64(deadLettered.count), missing: missing, intakeClosed: intakeClosed)
        }
        let root = tree.root
        let deadList = SealStatement.deadLetterList(deadLettered)
        let newest = try connection.query("""
            SELECT seal, merkle_root, assessments, dead_letter_seqs FROM oversight.batch_seals
            WHERE batch_id = \(batchID)::uuid ORDER BY seal DESC LIMIT 1
            """)
        let number = newest.rowCount == 1 ? newest.int(0, 0)! + 1 : 1
        if newest.rowCount == 1, newest.bytes(0, 1) == root, newest.int64(0, 2) == count, newest.bytes(0, 3) == deadList {
            return .unchanged
        }
        let completeness = SealStatement.Completeness(seal: number, sealedAt: sealedAt, accepted: accepted,
                                                      deadLettered: Int64(deadLettered.count), rejected: rejected,
                                                      deadLetterSHA256: AuditHash.sha256(deadList))
        let statement = SealStatement(batchID: batchID.description, organisation: organisation, criteriaSHA256: criteria,
                                      assessments: count, merkleRoot: root, completeness: completeness)
        try connection.query("""
            INSERT INTO oversight.batch_seals (batch_id, seal, assessments, merkle_root, leaves, signing_key, signature, algorithm,
                                               sealed_at, statement_version, accepted, dead_lettered, rejected, dead_letter_seqs)
            SELECT \(batchID)::uuid, \(number), \(count), \(root),
                   (SELECT coalesce(string_agg(int8send(seq) || row_sha256, ''::bytea ORDER BY seq), ''::bytea)
                    FROM oversight.assessments WHERE batch_id = \(batchID)::uuid),
                   \(key.publicKey), \(key.sign(statement)), 'ed25519',
                   \(sealedAt)::timestamptz, 2, \(accepted), \(Int64(deadLettered.count)), \(rejected), \(deadList)
            """)
        return .sealed(number)
    }

    /// Every seal of a batch, oldest first.
    public func seals(batchID: BatchID) throws -> [SealRecord] {
        let rows = try connection.query("""
            SELECT seal, assessments, merkle_root, leaves, signing_key, signature,
                   to_char(sealed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   statement_version, accepted, dead_lettered, rejected, dead_letter_seqs
            FROM oversight.batch_seals WHERE batch_id = \(batchID)::uuid ORDER BY seal
            """)
        return try (0..<rows.rowCount).map { i in
            guard let leaves = SealRecord.leaves(from: rows.bytes(i, 3) ?? [1]) else {
                throw StoreError(message: "the leaf list of seal \(rows.int(i, 0) ?? 0) of batch \(batchID) is not a whole number of entries")
            }
            let deadList = rows.bytes(i, 11)
            let deadSeqs = deadList.map { bytes in
                stride(from: 0, to: bytes.count - bytes.count % 8, by: 8).map { k in
                    Int64(bitPattern: bytes[k..<k + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
                }
            }
            return SealRecord(batchID: batchID, seal: rows.int(i, 0)!, assessments: rows.int64(i, 1)!, merkleRoot: rows.bytes(i, 2)!,
                              leaves: leaves, signingKey: rows.bytes(i, 4)!, signature: rows.bytes(i, 5)!, sealedAt: rows.string(i, 6)!,
                              statementVersion: rows.int(i, 7) ?? 1, accepted: rows.int64(i, 8), deadLettered: rows.int64(i, 9),
                              rejected: rows.int64(i, 10), deadLetterSeqs: deadSeqs, deadLetterList: deadList)
        }
    }

    /// The newest seal of a batch.
    public func newestSeal(batchID: BatchID) throws -> SealRecord? { try seals(batchID: batchID).last }

    /// Calls `body` with every assessment of the batch in seq order, a page at a time.
    public func forEachAssessment(batchID: BatchID, _ body: (StoredAssessment) throws -> Void) throws {
        try forEachAssessmentPage(batchID: batchID) { page in for row in page { try body(row) } }
    }

    /// The batch's assessments a page (10,000 rows) at a time, in seq order.
    public func forEachAssessmentPage(batchID: BatchID, _ body: ([StoredAssessment]) throws -> Void) throws {
        func page(_ range: (low: Int64, high: Int64)) -> PGQuery {
            """
            SELECT a.seq, a.record_id, a.criteria_sha256, a.input_sha256, a.row_sha256, a.result::text, j.record,
                   a.verdict, a.score, a.applies, a.engine, a.worst_case, a.determined
            FROM oversight.assessments a
            LEFT JOIN oversight.jobs j ON j.batch_id = a.batch_id AND j.seq = a.seq
            WHERE a.batch_id = \(batchID)::uuid AND a.seq > \(range.low) AND a.seq <= \(range.high) ORDER BY a.seq
            """
        }
        // The next page is asked for before this one is worked through: PostgreSQL reads it
        // while the caller hashes (each took about half of a million-row verify).
        let ranges = try seqRanges(batchID: batchID, step: 10_000)
        guard let first = ranges.first else { return }
        var pending: PGQuery? = page(first)
        try connection.send(pending!)
        defer { if let pending { _ = try? connection.receive(pending) } }
        for k in ranges.indices {
            let rows = try connection.receive(pending!)
            pending = nil
            if k + 1 < ranges.count {
                let next = page(ranges[k + 1])
                try connection.send(next)
                pending = next
            }
            try body((0..<rows.rowCount).map { i in
                StoredAssessment(seq: rows.int64(i, 0)!, recordID: rows.string(i, 1),
                                 verdict: rows.string(i, 7)!, worstCase: rows.string(i, 11), determined: rows.bool(i, 12), score: rows.int(i, 8)!, applies: rows.string(i, 9)!,
                                 engine: rows.string(i, 10)!, criteriaSHA256: rows.bytes(i, 2) ?? [],
                                 inputSHA256: rows.bytes(i, 3) ?? [], rowSHA256: rows.bytes(i, 4) ?? [],
                                 result: rows.textBytes(i, 5) ?? [], record: rows.textBytes(i, 6))
            })
        }
    }

    /// Closed seq ranges of `step` covering a batch's assessments, lowest first: each page is a
    /// bounded index range, where `seq > last ORDER BY seq LIMIT n` let a planner with stale
    /// statistics read the rest of a million-row batch for every page.
    func seqRanges(batchID: BatchID, step: Int64) throws -> [(Int64, Int64)] {
        let bounds = try connection.query("""
            SELECT min(seq), max(seq) FROM oversight.assessments WHERE batch_id = \(batchID)::uuid
            """)
        guard let low = bounds.int64(0, 0), let high = bounds.int64(0, 1) else { return [] }
        return stride(from: low - 1, to: high, by: Int(step)).map { ($0, min($0 + step, high)) }
    }
}
