import Assessment

/// What `oversight audit verify` found for one batch.
public struct VerificationReport: Sendable {
    public enum Problem: Sendable, Equatable, CustomStringConvertible {
        /// The row's stored content no longer gives its hash, or its hash is not the sealed one.
        case altered(seq: Int64, recordID: String?, reason: String)
        /// Sealed, but the row is gone.
        case missing(seq: Int64)
        /// A row the seal does not cover.
        case extra(seq: Int64, recordID: String?)
        /// Something about the seal itself.
        case seal(String)

        public var description: String {
            func named(_ seq: Int64, _ id: String?) -> String { "seq \(seq)" + (id.map { " (record \"\($0)\")" } ?? "") }
            switch self {
            case .altered(let seq, let id, let reason): return "\(named(seq, id)): altered: \(reason)"
            case .missing(let seq): return "seq \(seq): missing: sealed but no longer in oversight.assessments"
            case .extra(let seq, let id): return "\(named(seq, id)): extra: not covered by the seal"
            case .seal(let message): return "seal: \(message)"
            }
        }
    }

    public let batchID: String
    public let organisation: String
    public let seal: SealRecord?
    public let rows: Int64
    public var problems: [Problem]
    public var ok: Bool { seal != nil && problems.isEmpty }
}

extension AuditStore {
    /// Recomputes every row hash of the batch and the Merkle root, checks the newest seal's
    /// signature (and, given `trustedKey`, that this key made it), and lists every row that was
    /// altered, removed or added since. Reads in pages; memory grows with the seal's leaf list.
    /// `progress` hears (rows checked, rows sealed) every 10,000 rows.
    public func verify(batchID: String, trustedKey: [UInt8]?,
                       progress: ((_ done: Int64, _ total: Int64) -> Void)? = nil) throws -> VerificationReport? {
        guard let batch = try batch(id: batchID) else { return nil }
        guard let seal = try newestSeal(batchID: batchID) else {
            let why = batch.completed ? "the batch completed but has no seal" : "the batch has no seal yet (it is not completed)"
            return VerificationReport(batchID: batchID, organisation: batch.organisation, seal: nil, rows: 0, problems: [.seal(why)])
        }
        var problems: [VerificationReport.Problem] = []
        let statement = SealStatement(batchID: batchID, organisation: batch.organisation, criteriaSHA256: batch.criteriaSHA256,
                                      assessments: seal.assessments, merkleRoot: seal.merkleRoot)
        if !SealKey.isValid(signature: seal.signature, of: statement, publicKey: seal.signingKey) {
            problems.append(.seal("the signature does not verify: the seal, the batch's organisation or its criteria were changed"))
        }
        if let trustedKey, trustedKey != seal.signingKey {
            problems.append(.seal("signed by a key that is not the trusted one"))
        }
        let sealedLeaves = seal.leaves.map { MerkleTree.leafHash(seq: $0.seq, rowSHA256: $0.rowSHA256) }
        let leafListIntact = MerkleTree.root(sealedLeaves) == seal.merkleRoot && Int64(seal.leaves.count) == seal.assessments
        if !leafListIntact {
            problems.append(.seal("the stored leaf list does not give the signed root; rows cannot be named from it"))
        }
        var sealed: [Int64: [UInt8]] = [:]
        sealed.reserveCapacity(seal.leaves.count)
        for leaf in seal.leaves { sealed[leaf.seq] = leaf.rowSHA256 }

        var recomputed: [[UInt8]] = []
        var seen = Set<Int64>()
        var rows: Int64 = 0
        try forEachAssessment(batchID: batchID) { row in
            rows += 1
            if rows % 10_000 == 0 { progress?(rows, seal.assessments) }
            seen.insert(row.seq)
            let hash = Self.recomputeRowHash(batchID: batchID, row)
            if hash != row.rowSHA256 {
                problems.append(.altered(seq: row.seq, recordID: row.recordID, reason: "its content no longer gives its stored row_sha256"))
            } else if let expected = sealed[row.seq], expected != hash {
                problems.append(.altered(seq: row.seq, recordID: row.recordID, reason: "content and row_sha256 differ from what was sealed"))
            }
            if row.criteriaSHA256 != batch.criteriaSHA256 {
                problems.append(.altered(seq: row.seq, recordID: row.recordID, reason: "criteria_sha256 is not the batch's criteria set"))
            }
            if let column = Self.columnDisagreeing(with: row) {
                problems.append(.altered(seq: row.seq, recordID: row.recordID, reason: "the \(column) column disagrees with the hashed result"))
            }
            if let record = row.record {
                var shape = JSONParser.Shape()
                let parsed = try? JSONParser.parse(record, shape: &shape)
                // As the worker hashed it: a canonical record as it is stored, any other written canonically.
                if parsed.map({ shape.isCanonical ? AuditHash.sha256(record) : AuditHash.input($0) }) != row.inputSHA256 {
                    problems.append(.altered(seq: row.seq, recordID: row.recordID, reason: "the submitted record in oversight.jobs no longer gives input_sha256"))
                } else if parsed?["id"]?.stringValue != row.recordID {
                    problems.append(.altered(seq: row.seq, recordID: row.recordID, reason: "record_id is not the submitted record's id"))
                }
            } else {
                problems.append(.altered(seq: row.seq, recordID: row.recordID, reason: "its submitted record is gone from oversight.jobs"))
            }
            if sealed[row.seq] == nil {
                problems.append(.extra(seq: row.seq, recordID: row.recordID))
            } else {
                recomputed.append(MerkleTree.leafHash(seq: row.seq, rowSHA256: hash))
            }
        }
        for leaf in seal.leaves where !seen.contains(leaf.seq) { problems.append(.missing(seq: leaf.seq)) }
        if MerkleTree.root(recomputed) != seal.merkleRoot && problems.isEmpty {
            problems.append(.seal("the rows give another Merkle root than the signed one"))
        }
        return VerificationReport(batchID: batchID, organisation: batch.organisation, seal: seal, rows: rows, problems: problems)
    }

    /// The first column copied out of the result (for querying) that no longer says what the
    /// hashed result says; nil when they agree.
    static func columnDisagreeing(with row: StoredAssessment) -> String? {
        guard let result = try? JSONParser.parse(row.result) else { return "result" }
        if result["verdict"]?.stringValue != row.verdict { return "verdict" }
        if result["score"] != .number(Double(row.score)) { return "score" }
        if result["engine"]?.stringValue != row.engine { return "engine" }
        if let packs = result["packs"], case .array(let list) = packs {
            let applies = list.compactMap { $0["applies"]?.stringValue.flatMap(Applicability.init(rawValue:)) }
            if Applicability.overall(applies).rawValue != row.applies { return "applies" }
        }
        return nil
    }

    /// The row hash from the row's stored columns. Rows stored before results were kept as exact
    /// text (schema version 4) come back re-encoded by jsonb; their canonical form is recomputed.
    static func recomputeRowHash(batchID: String, _ row: StoredAssessment) -> [UInt8] {
        let direct = AuditHash.row(batchID: batchID, seq: row.seq, inputSHA256: row.inputSHA256,
                                   criteriaSHA256: row.criteriaSHA256, result: row.result)
        if direct == row.rowSHA256 { return direct }
        guard let value = try? JSONParser.parse(row.result) else { return direct }
        return AuditHash.row(batchID: batchID, seq: row.seq, inputSHA256: row.inputSHA256,
                             criteriaSHA256: row.criteriaSHA256, result: value.canonicalBytes)
    }
}
