public import Assessment
import LibPQ

/// A stored seal of a batch.
public struct SealRecord: Sendable {
    public let batchID: String
    public let seal: Int
    public let assessments: Int64
    public let merkleRoot: [UInt8]
    /// (seq, row_sha256) of every sealed assessment, in seq order.
    public let leaves: [(seq: Int64, rowSHA256: [UInt8])]
    public let signingKey: [UInt8]
    public let signature: [UInt8]
    public let sealedAt: String

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

extension AuditStore {
    /// Seals the batch's assessments as they are now, unless the newest seal already covers
    /// exactly them. Runs in one repeatable-read transaction so the rows cannot move under it.
    /// Returns the new seal's number, or nil when nothing changed.
    @discardableResult
    public func seal(batchID: String, key: SealKey) throws -> Int? {
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

    private func sealInTransaction(batchID: String, key: SealKey) throws -> Int? {
        let batch = try connection.query("""
            SELECT organisation, criteria_sha256 FROM oversight.batches WHERE batch_id = \(batchID)::uuid
            """)
        guard batch.rowCount == 1, let organisation = batch.string(0, 0), let criteria = batch.bytes(0, 1) else {
            throw StoreError(message: "cannot seal unknown batch \(batchID)")
        }
        // Streamed: the tree needs O(log n) memory, and the leaf list is built by the server
        // from the same snapshot, so a million rows cost this process a page at a time.
        var tree = MerkleTree.Builder()
        for (low, high) in try seqRanges(batchID: batchID, step: 50_000) {
            let page = try connection.query("""
                SELECT seq, row_sha256 FROM oversight.assessments
                WHERE batch_id = \(batchID)::uuid AND seq > \(low) AND seq <= \(high) ORDER BY seq
                """)
            for i in 0..<page.rowCount {
                tree.append(leafHash: MerkleTree.leafHash(seq: page.int64(i, 0)!, rowSHA256: page.bytes(i, 1)!))
            }
        }
        let root = tree.root
        let count = Int64(tree.count)
        let newest = try connection.query("""
            SELECT seal, merkle_root, assessments FROM oversight.batch_seals
            WHERE batch_id = \(batchID)::uuid ORDER BY seal DESC LIMIT 1
            """)
        let number = newest.rowCount == 1 ? newest.int(0, 0)! + 1 : 1
        if newest.rowCount == 1, newest.bytes(0, 1) == root, newest.int64(0, 2) == count { return nil }
        let statement = SealStatement(batchID: batchID, organisation: organisation, criteriaSHA256: criteria,
                                      assessments: count, merkleRoot: root)
        try connection.query("""
            INSERT INTO oversight.batch_seals (batch_id, seal, assessments, merkle_root, leaves, signing_key, signature, algorithm)
            SELECT \(batchID)::uuid, \(number), \(count), \(root),
                   (SELECT coalesce(string_agg(int8send(seq) || row_sha256, ''::bytea ORDER BY seq), ''::bytea)
                    FROM oversight.assessments WHERE batch_id = \(batchID)::uuid),
                   \(key.publicKey), \(key.sign(statement)), 'ed25519'
            """)
        return number
    }

    /// The newest seal of a batch, with its organisation and criteria (what the signature covers).
    public func newestSeal(batchID: String) throws -> SealRecord? {
        let rows = try connection.query("""
            SELECT seal, assessments, merkle_root, leaves, signing_key, signature, sealed_at::text
            FROM oversight.batch_seals WHERE batch_id = \(batchID)::uuid ORDER BY seal DESC LIMIT 1
            """)
        guard rows.rowCount == 1 else { return nil }
        guard let leaves = SealRecord.leaves(from: rows.bytes(0, 3) ?? [1]) else {
            throw StoreError(message: "the seal's leaf list of batch \(batchID) is not a whole number of entries")
        }
        return SealRecord(batchID: batchID, seal: rows.int(0, 0)!, assessments: rows.int64(0, 1)!, merkleRoot: rows.bytes(0, 2)!,
                          leaves: leaves, signingKey: rows.bytes(0, 4)!, signature: rows.bytes(0, 5)!, sealedAt: rows.string(0, 6)!)
    }

    /// Calls `body` with every assessment of the batch in seq order, a page at a time.
    public func forEachAssessment(batchID: String, _ body: (StoredAssessment) throws -> Void) throws {
        for (low, high) in try seqRanges(batchID: batchID, step: 10_000) {
            let page = try connection.query("""
                SELECT a.seq, a.record_id, a.criteria_sha256, a.input_sha256, a.row_sha256, a.result::text, j.record,
                       a.verdict, a.score, a.applies, a.engine
                FROM oversight.assessments a
                LEFT JOIN oversight.jobs j ON j.batch_id = a.batch_id AND j.seq = a.seq
                WHERE a.batch_id = \(batchID)::uuid AND a.seq > \(low) AND a.seq <= \(high) ORDER BY a.seq
                """)
            for i in 0..<page.rowCount {
                let row = StoredAssessment(seq: page.int64(i, 0)!, recordID: page.string(i, 1),
                                           verdict: page.string(i, 7)!, score: page.int(i, 8)!, applies: page.string(i, 9)!,
                                           engine: page.string(i, 10)!, criteriaSHA256: page.bytes(i, 2) ?? [],
                                           inputSHA256: page.bytes(i, 3) ?? [], rowSHA256: page.bytes(i, 4) ?? [],
                                           result: page.textBytes(i, 5) ?? [], record: page.textBytes(i, 6))
                try body(row)
            }
        }
    }

    /// Closed seq ranges of `step` covering a batch's assessments, lowest first: each page is a
    /// bounded index range, where `seq > last ORDER BY seq LIMIT n` let a planner with stale
    /// statistics read the rest of a million-row batch for every page.
    func seqRanges(batchID: String, step: Int64) throws -> [(Int64, Int64)] {
        let bounds = try connection.query("""
            SELECT min(seq), max(seq) FROM oversight.assessments WHERE batch_id = \(batchID)::uuid
            """)
        guard let low = bounds.int64(0, 0), let high = bounds.int64(0, 1) else { return [] }
        return stride(from: low - 1, to: high, by: Int(step)).map { ($0, min($0 + step, high)) }
    }
}
