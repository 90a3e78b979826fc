public import Identifiers
public import Assessment
import LibPQ
import Foundation

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

/// The first seqs of a running batch, folded into its Merkle tree ahead of the seal by one seal
/// thread (`folder`), which stored their leaves in `oversight.seal_folds`.
public struct SealFold: Sendable {
    /// Seqs folded at a time by default: a page of the seal's own walk.
    public static let defaultPage: Int64 = 50_000
    static let none = "00000000-0000-0000-0000-000000000000"
    public let folder: String
    public let page: Int64
    /// The tree over seqs 1 to `through` (every one of them assessed).
    public internal(set) var tree = MerkleTree.Builder()
    public internal(set) var through: Int64 = 0

    public init(page: Int64 = SealFold.defaultPage) {
        folder = UUID().uuidString.lowercased()
        self.page = max(1, page)
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
    /// With `fold`, the rows it folded while the batch ran are taken from it and from the
    /// leaves it stored, and only the rest are read (unless its stored leaves are not all there:
    /// then every row is read, as without it).
    public func seal(batchID: BatchID, key: SealKey, fold: SealFold? = nil) throws -> SealOutcome {
        try connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        do {
            let result = try sealInTransaction(batchID: batchID, key: key, fold: fold)
            try connection.query("COMMIT")
            return result
        } catch {
            _ = try? connection.query("ROLLBACK")
            throw error
        }
    }

    /// How many uncovered seqs an incomplete seal names.
    static let missingListed = 10_000

    private func sealInTransaction(batchID: BatchID, key: SealKey, fold: SealFold?) throws -> SealOutcome {
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
        // (from the stored folds and, for the rest, this snapshot), so a million rows cost this
        // process a page at a time. The walk also finds every accepted seq that has no assessment.
        // What was folded ahead counts if every leaf it stored is there (its seqs are 1 to
        // `through`, each assessed: no gap, so no dead letter and nothing missing among them).
        var usable = SealFold(), folder = SealFold.none
        if let fold, fold.through > 0 {
            let stored = try connection.query("""
                SELECT coalesce(sum(length(leaves)), 0)::bigint FROM oversight.seal_folds
                WHERE batch_id = \(batchID)::uuid AND folder = \(fold.folder)::uuid
                """).int64(0, 0)
            if stored == fold.through * 40 { usable = fold; folder = fold.folder }
        }
        var tree = usable.tree
        var deadLettered: [Int64] = []
        var missing: [Int64] = []
        var missingCount: Int64 = 0
        var expected: Int64 = usable.through + 1
        func gap(upTo seq: Int64) {
            while expected < seq {
                if open.contains(expected) { deadLettered.append(expected) } else {
                    missingCount += 1
                    if missing.count < Self.missingListed { missing.append(expected) }
                }
                expected += 1
            }
        }
        for (low, high) in try seqRanges(batchID: batchID, step: 50_000, after: usable.through) {
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
        // A sealed batch needs its folds no more (a later seal, after a retry, reads it all).
        func dropFolds() throws { try connection.query("DELETE FROM oversight.seal_folds WHERE batch_id = \(batchID)::uuid") }
        if newest.rowCount == 1, newest.bytes(0, 1) == root, newest.int64(0, 2) == count, newest.bytes(0, 3) == deadList {
            try dropFolds()
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
                   (SELECT coalesce(string_agg(leaves, ''::bytea ORDER BY first_seq), ''::bytea) FROM oversight.seal_folds
                    WHERE batch_id = \(batchID)::uuid AND folder = \(folder)::uuid)
                   || (SELECT coalesce(string_agg(int8send(seq) || row_sha256, ''::bytea ORDER BY seq), ''::bytea)
                       FROM oversight.assessments WHERE batch_id = \(batchID)::uuid AND seq > \(usable.through)),
                   \(key.publicKey), \(key.sign(statement)), 'ed25519',
                   \(sealedAt)::timestamptz, 2, \(accepted), \(Int64(deadLettered.count)), \(rejected), \(deadList)
            """)
        try dropFolds()
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
            try body(Self.storedAssessments(rows))
        }
    }

    /// A page's rows as `StoredAssessment`s, decoded on every core (hex and text copies of a
    /// million rows took a core on their own while `audit verify`'s checks waited for them).
    static func storedAssessments(_ rows: PGResult) -> [StoredAssessment] {
        let count = rows.rowCount
        func row(_ i: Int) -> StoredAssessment {
            StoredAssessment(seq: rows.int64(i, 0)!, recordID: rows.string(i, 1),
                             verdict: rows.string(i, 7)!, worstCase: rows.string(i, 11), determined: rows.bool(i, 12), score: rows.int(i, 8)!,
                             applies: rows.string(i, 9)!, engine: rows.string(i, 10)!, criteriaSHA256: rows.bytes(i, 2) ?? [],
                             inputSHA256: rows.bytes(i, 3) ?? [], rowSHA256: rows.bytes(i, 4) ?? [],
                             result: rows.textBytes(i, 5) ?? [], record: rows.textBytes(i, 6))
        }
        let parts = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8, count / 500))
        guard parts > 1 else { return (0..<count).map(row) }
        var out = [StoredAssessment?](repeating: nil, count: count)
        out.withUnsafeMutableBufferPointer { buffer in
            // The result is only read (PQgetvalue and PQgetlength on a finished PGresult).
            nonisolated(unsafe) let buffer = buffer
            nonisolated(unsafe) let row = row
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                for i in (count * part / parts)..<(count * (part + 1) / parts) { buffer[i] = row(i) }
            }
        }
        return out.map { $0! }
    }

    /// Closed seq ranges of `step` covering a batch's assessments, lowest first: each page is a
    /// bounded index range, where `seq > last ORDER BY seq LIMIT n` let a planner with stale
    /// statistics read the rest of a million-row batch for every page.
    func seqRanges(batchID: BatchID, step: Int64, after: Int64 = 0) throws -> [(Int64, Int64)] {
        let bounds = try connection.query("""
            SELECT min(seq), max(seq) FROM oversight.assessments WHERE batch_id = \(batchID)::uuid AND seq > \(after)
            """)
        guard let low = bounds.int64(0, 0), let high = bounds.int64(0, 1) else { return [] }
        return stride(from: low - 1, to: high, by: Int(step)).map { ($0, min($0 + step, high)) }
    }

    /// Drops what was folded ahead of batches that are completed or cancelled: left by a
    /// coordinator that folded on after another took over and sealed them. Returns the rows dropped.
    @discardableResult
    public func discardSealFoldsOfFinishedBatches() throws -> Int {
        try connection.query("""
            DELETE FROM oversight.seal_folds f USING oversight.batches b
            WHERE b.batch_id = f.batch_id AND (b.completed_at IS NOT NULL OR b.cancelled_at IS NOT NULL)
            """).affectedRows
    }

    /// Folds the running batch's assessed seqs after `fold.through` into `fold`, a whole page
    /// at a time, while every seq of the page is assessed; stores each page's leaves (see
    /// `oversight.seal_folds`). Returns how many seqs it folded: none while the next page has
    /// a gap (a job not yet committed, or given up). At most `pages` pages per call, so that a
    /// seal waiting behind it waits little.
    @discardableResult
    public func fold(_ fold: inout SealFold, batchID: BatchID, pages: Int = 2) throws -> Int64 {
        var folded: Int64 = 0
        for _ in 0..<pages {
            let low = fold.through, high = low + fold.page
            let rows = try connection.query("""
                SELECT seq, row_sha256 FROM oversight.assessments
                WHERE batch_id = \(batchID)::uuid AND seq > \(low) AND seq <= \(high) ORDER BY seq
                """)
            // The key is unique: as many rows as seqs in the range is every one of them.
            guard rows.rowCount == Int(fold.page) else { break }
            var tree = fold.tree
            var leaves: [UInt8] = []
            leaves.reserveCapacity(rows.rowCount * 40)
            for i in 0..<rows.rowCount {
                guard let seq = rows.int64(i, 0), let hash = rows.bytes(i, 1), hash.count == 32 else {
                    throw StoreError(message: "an assessment of batch \(batchID) has no row hash")
                }
                tree.append(leafHash: MerkleTree.leafHash(seq: seq, rowSHA256: hash))
                withUnsafeBytes(of: UInt64(bitPattern: seq).bigEndian) { leaves.append(contentsOf: $0) }
                leaves.append(contentsOf: hash)
            }
            try connection.query("""
                INSERT INTO oversight.seal_folds (batch_id, folder, first_seq, leaves)
                VALUES (\(batchID)::uuid, \(fold.folder)::uuid, \(low + 1), \(leaves))
                """)
            fold.tree = tree
            fold.through = high
            folded += fold.page
        }
        return folded
    }
}
