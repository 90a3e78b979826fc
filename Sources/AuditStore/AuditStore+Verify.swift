public import Identifiers
import Assessment
import Foundation

/// What `oversight audit verify` found for one batch.
public struct VerificationReport: Sendable {
    public enum Problem: Sendable, Equatable, CustomStringConvertible {
        /// The row's stored content no longer gives its hash, or its hash is not the sealed one.
        case altered(seq: Int64, recordID: String?, reason: String)
        /// Sealed, but the row is gone.
        case missing(seq: Int64)
        /// A row the seal does not cover.
        case extra(seq: Int64, recordID: String?)
        /// An accepted job the seal covers neither by an assessment nor by a dead letter.
        case uncovered(seq: Int64)
        /// Something about the seal itself.
        case seal(String)

        public var description: String {
            func named(_ seq: Int64, _ id: String?) -> String { "seq \(seq)" + (id.map { " (record \"\($0)\")" } ?? "") }
            switch self {
            case .altered(let seq, let id, let reason): return "\(named(seq, id)): altered: \(reason)"
            case .missing(let seq): return "seq \(seq): missing: sealed but no longer in oversight.assessments"
            case .extra(let seq, let id): return "\(named(seq, id)): extra: not covered by the seal"
            case .uncovered(let seq): return "seq \(seq): not covered: an accepted job with neither a sealed assessment nor a dead letter"
            case .seal(let message): return "seal: \(message)"
            }
        }
    }

    public let batchID: BatchID
    public let organisation: String
    /// The seal the rows were checked against (the newest, or the one asked for).
    public let seal: SealRecord?
    /// Every seal whose signature and statement were checked.
    public var sealsChecked: [SealRecord] = []
    public let rows: Int64
    public var problems: [Problem]
    public var ok: Bool { seal != nil && problems.isEmpty }
}

extension AuditStore {
    /// Recomputes every row hash of the batch and the Merkle root, checks the newest seal's
    /// signature (and, given `trustedKey`, that this key made it), and lists every row that was
    /// altered, removed or added since. Reads in pages; memory grows with the seal's leaf list.
    /// `progress` hears (rows checked, rows sealed) every 10,000 rows.
    public func verify(batchID: BatchID, trustedKey: [UInt8]?, seal only: Int? = nil,
                       progress: ((_ done: Int64, _ total: Int64) -> Void)? = nil) throws -> VerificationReport? {
        guard let batch = try batch(id: batchID) else { return nil }
        let all = try seals(batchID: batchID)
        guard let newest = all.last else {
            let why = batch.completed ? "the batch completed but has no seal" : "the batch has no seal yet (it is not completed)"
            return VerificationReport(batchID: batchID, organisation: batch.organisation, seal: nil, rows: 0, problems: [.seal(why)])
        }
        var problems: [VerificationReport.Problem] = []
        var checked = all
        if let only {
            guard let named = all.first(where: { $0.seal == only }) else {
                let have = all.map { String($0.seal) }.joined(separator: ", ")
                return VerificationReport(batchID: batchID, organisation: batch.organisation, seal: nil, rows: 0,
                                          problems: [.seal("the batch has no seal \(only); its seals are \(have)")])
            }
            checked = [named]
        }
        for seal in checked {
            problems += Self.statementProblems(seal, batch: batch, trustedKey: trustedKey, numbered: all.count > 1)
        }
        let seal = checked.last!
        // Rows are append-only: every row an earlier seal covered is still there, unchanged, in the newest.
        if only == nil {
            var newestLeaves: [Int64: [UInt8]] = [:]
            newestLeaves.reserveCapacity(newest.leaves.count)
            for leaf in newest.leaves { newestLeaves[leaf.seq] = leaf.rowSHA256 }
            for older in all.dropLast() {
                let changed = older.leaves.filter { newestLeaves[$0.seq] != $0.rowSHA256 }
                if let first = changed.first {
                    problems.append(.seal("seal \(older.seal) covers \(changed.count) rows (first seq \(first.seq)) that seal \(newest.seal) does not cover unchanged"))
                }
            }
        }
        // Completeness: every accepted job has a sealed assessment or a dead letter.
        let dead = try Set(seal.deadLetterSeqs ?? activeDeadLetterSeqs(batchID: batchID))
        let accepted = seal.accepted ?? batch.accepted
        var covered = Set<Int64>(minimumCapacity: seal.leaves.count)
        for leaf in seal.leaves { covered.insert(leaf.seq) }
        var uncovered = 0
        if accepted > 0 {
            for seq in 1...accepted where !covered.contains(seq) && !dead.contains(seq) {
                uncovered += 1
                if uncovered <= 20 { problems.append(.uncovered(seq: seq)) }
            }
        }
        if uncovered > 20 { problems.append(.seal("\(uncovered - 20) more accepted jobs are not covered")) }
        if seal.seal == newest.seal && batch.accepted != accepted {
            problems.append(.seal("the batch has \(batch.accepted) accepted jobs, the seal counts \(accepted)"))
        }
        let storedJobs = try connection.query("SELECT count(*) FROM oversight.jobs WHERE batch_id = \(batchID)::uuid").int64(0, 0) ?? 0
        if seal.seal == newest.seal && storedJobs != accepted {
            problems.append(.seal("oversight.jobs holds \(storedJobs) jobs of the batch, the seal counts \(accepted) accepted"))
        }
        let checkExtra = seal.seal == newest.seal
        var sealed: [Int64: [UInt8]] = [:]
        sealed.reserveCapacity(seal.leaves.count)
        for leaf in seal.leaves { sealed[leaf.seq] = leaf.rowSHA256 }

        var recomputed: [[UInt8]] = []
        var seen = Set<Int64>()
        var rows: Int64 = 0
        let criteriaSHA256 = batch.criteriaSHA256
        try forEachAssessmentPage(batchID: batchID) { page in
            // Rows are checked on every core (hashing and skimming took all of one), then
            // taken in seq order.
            let checks = Self.check(page, batchID: batchID, criteriaSHA256: criteriaSHA256, sealed: sealed)
            for (row, check) in zip(page, checks) {
                rows += 1
                if rows % 10_000 == 0 { progress?(rows, seal.assessments) }
                seen.insert(row.seq)
                problems += check.problems
                if let leaf = check.leaf {
                    recomputed.append(leaf)
                } else if checkExtra {
                    problems.append(.extra(seq: row.seq, recordID: row.recordID))
                }
            }
        }
        for leaf in seal.leaves where !seen.contains(leaf.seq) { problems.append(.missing(seq: leaf.seq)) }
        if MerkleTree.root(recomputed) != seal.merkleRoot && problems.isEmpty {
            problems.append(.seal("the rows give another Merkle root than the signed one"))
        }
        var report = VerificationReport(batchID: batchID, organisation: batch.organisation, seal: seal, rows: rows, problems: problems)
        report.sealsChecked = checked
        return report
    }

    /// What checking one row found: its problems, and its Merkle leaf if the seal covers it.
    struct RowCheck: Sendable {
        var problems: [VerificationReport.Problem] = []
        var leaf: [UInt8]?
    }

    /// Checks the rows of a page, split across the machine's cores; the checks in row order.
    static func check(_ page: [StoredAssessment], batchID: BatchID, criteriaSHA256: [UInt8], sealed: [Int64: [UInt8]]) -> [RowCheck] {
        var out = [RowCheck](repeating: RowCheck(), count: page.count)
        let parts = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8, page.count / 500))
        out.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let buffer = buffer
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let range = (page.count * part / parts)..<(page.count * (part + 1) / parts)
                for i in range { buffer[i] = check(page[i], batchID: batchID, criteriaSHA256: criteriaSHA256, sealed: sealed) }
            }
        }
        return out
    }

    /// One row: its hash recomputed and compared with the stored and the sealed one, its
    /// criteria, its copied columns, and its submitted record.
    static func check(_ row: StoredAssessment, batchID: BatchID, criteriaSHA256: [UInt8], sealed: [Int64: [UInt8]]) -> RowCheck {
        var problems: [VerificationReport.Problem] = []
        let hash = recomputeRowHash(batchID: batchID, row)
        let expected = sealed[row.seq]
        if hash != row.rowSHA256 {
            problems.append(.altered(seq: row.seq, recordID: row.recordID, reason: "its content no longer gives its stored row_sha256"))
        } else if let expected, expected != hash {
            problems.append(.altered(seq: row.seq, recordID: row.recordID, reason: "content and row_sha256 differ from what was sealed"))
        }
        if row.criteriaSHA256 != criteriaSHA256 {
            problems.append(.altered(seq: row.seq, recordID: row.recordID, reason: "criteria_sha256 is not the batch's criteria set"))
        }
        if let column = columnDisagreeing(with: row) {
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
        return RowCheck(problems: problems, leaf: expected == nil ? nil : MerkleTree.leafHash(seq: row.seq, rowSHA256: hash))
    }

    /// What is wrong with one seal's statement: its signature, its key, its leaf list, and for
    /// version 2 its proof of completeness.
    static func statementProblems(_ seal: SealRecord, batch: BatchRecord, trustedKey: [UInt8]?, numbered: Bool) -> [VerificationReport.Problem] {
        var problems: [VerificationReport.Problem] = []
        let name = numbered ? "seal \(seal.seal): " : ""
        var completeness: SealStatement.Completeness?
        if seal.statementVersion == 2 {
            guard let accepted = seal.accepted, let dead = seal.deadLettered, let rejected = seal.rejected, let list = seal.deadLetterList else {
                return [.seal("\(name)a version 2 seal without its counts")]
            }
            completeness = .init(seal: seal.seal, sealedAt: seal.sealedAt, accepted: accepted, deadLettered: dead, rejected: rejected,
                                 deadLetterSHA256: AuditHash.sha256(list))
            if accepted != seal.assessments + dead {
                problems.append(.seal("\(name)it counts \(accepted) accepted jobs but \(seal.assessments) assessed and \(dead) dead-lettered"))
            }
            if Int64(seal.deadLetterSeqs?.count ?? -1) != dead {
                problems.append(.seal("\(name)its list of dead-lettered seqs does not hold \(dead) entries"))
            }
        }
        let statement = SealStatement(batchID: batch.batchID.description, organisation: batch.organisation, criteriaSHA256: batch.criteriaSHA256,
                                      assessments: seal.assessments, merkleRoot: seal.merkleRoot, completeness: completeness)
        if !SealKey.isValid(signature: seal.signature, of: statement, publicKey: seal.signingKey) {
            problems.append(.seal("\(name)the signature does not verify: the seal, the batch's organisation or its criteria were changed"))
        }
        if let trustedKey, trustedKey != seal.signingKey {
            problems.append(.seal("\(name)signed by a key that is not the trusted one"))
        }
        let leaves = seal.leaves.map { MerkleTree.leafHash(seq: $0.seq, rowSHA256: $0.rowSHA256) }
        if MerkleTree.root(leaves) != seal.merkleRoot || Int64(seal.leaves.count) != seal.assessments {
            problems.append(.seal("\(name)the stored leaf list does not give the signed root; rows cannot be named from it"))
        }
        return problems
    }

    func activeDeadLetterSeqs(batchID: BatchID) throws -> [Int64] {
        let rows = try connection.query("""
            SELECT DISTINCT seq FROM oversight.dead_letters WHERE batch_id = \(batchID)::uuid AND retried_at IS NULL
            """)
        return (0..<rows.rowCount).map { rows.int64($0, 0)! }
    }

    /// The first column copied out of the result (for querying) that no longer says what the
    /// hashed result says; nil when they agree.
    static func columnDisagreeing(with row: StoredAssessment) -> String? {
        skimmedColumnDisagreeing(with: row) ?? parsedColumnDisagreeing(with: row)
    }

    /// `columnDisagreeing` from the parsed tree.
    static func parsedColumnDisagreeing(with row: StoredAssessment) -> String? {
        guard let result = try? JSONParser.parse(row.result) else { return "result" }
        if result["verdict"]?.stringValue != row.verdict { return "verdict" }
        if result["score"] != .number(Double(row.score)) { return "score" }
        if result["worst_case"]?.stringValue != row.worstCase { return "worst_case" }
        if result["determined"].map({ $0 == .bool(true) }) != row.determined { return "determined" }
        if result["engine"]?.stringValue != row.engine { return "engine" }
        if let packs = result["packs"], case .array(let list) = packs {
            let applies = list.compactMap { $0["applies"]?.stringValue.flatMap(Applicability.init(rawValue:)) }
            if Applicability.overall(applies).rawValue != row.applies { return "applies" }
        }
        return nil
    }

    /// `columnDisagreeing` without building the result's tree: the same checks on the five
    /// top-level values and each pack's `applies`, read by `JSONSkim` (which validates the whole
    /// text as it walks). nil when the result cannot be skimmed (not an object, an escape in a
    /// key): the parser then decides. `.some(nil)`: every column agrees.
    static func skimmedColumnDisagreeing(with row: StoredAssessment) -> String?? {
        let skim = JSONSkim(row.result)
        guard let (members, packElements) = skim.members(expanding: "packs") else { return nil }
        var slots = Slots()
        for member in members {
            let slot: WritableKeyPath<Slots, Range<Int>?>
            switch member.key.count {
            case 5 where member.key.elementsEqual("score".utf8): slot = \.score
            case 5 where member.key.elementsEqual("packs".utf8): slot = \.packs
            case 6 where member.key.elementsEqual("engine".utf8): slot = \.engine
            case 7 where member.key.elementsEqual("verdict".utf8): slot = \.verdict
            case 10 where member.key.elementsEqual("worst_case".utf8): slot = \.worstCase
            case 10 where member.key.elementsEqual("determined".utf8): slot = \.determined
            default: continue
            }
            slots[keyPath: slot] = member.value  // keys are strictly ordered: each appears once
        }
        let (verdict, score, worstCase, determined, engine, packs) = (slots.verdict, slots.score, slots.worstCase, slots.determined, slots.engine, slots.packs)
        if verdict.flatMap(skim.string) != row.verdict { return .some("verdict") }
        if score.flatMap(skim.value) != .number(Double(row.score)) { return .some("score") }
        if worstCase.flatMap(skim.string) != row.worstCase { return .some("worst_case") }
        if determined.map({ skim.value($0) == .bool(true) }) != row.determined { return .some("determined") }
        if engine.flatMap(skim.string) != row.engine { return .some("engine") }
        // The whole text was validated by members(): inside it, brackets are counted.
        if packs != nil, let list = packElements {
            var applies: [Applicability] = []
            for element in list {
                guard let member = skim.member("applies", of: element, validated: true) else {
                    if skim.bytes[element.lowerBound] == UInt8(ascii: "{") { return nil }
                    continue
                }
                if let value = member.flatMap(skim.string).flatMap(Applicability.init(rawValue:)) { applies.append(value) }
            }
            if Applicability.overall(applies).rawValue != row.applies { return .some("applies") }
        }
        return .some(nil)
    }

    /// Where the skimmed members of a result are.
    private struct Slots {
        var verdict, score, worstCase, determined, engine, packs: Range<Int>?
    }

    /// The row hash from the row's stored columns. Rows stored before results were kept as exact
    /// text (schema version 4) come back re-encoded by jsonb; their canonical form is recomputed.
    static func recomputeRowHash(batchID: BatchID, _ row: StoredAssessment) -> [UInt8] {
        let direct = AuditHash.row(batchID: batchID.description, seq: row.seq, inputSHA256: row.inputSHA256,
                                   criteriaSHA256: row.criteriaSHA256, result: row.result)
        if direct == row.rowSHA256 { return direct }
        guard let value = try? JSONParser.parse(row.result) else { return direct }
        return AuditHash.row(batchID: batchID.description, seq: row.seq, inputSHA256: row.inputSHA256,
                             criteriaSHA256: row.criteriaSHA256, result: value.canonicalBytes)
    }
}
