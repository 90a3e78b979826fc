import Crypto

/// The version of the rule engine's semantics, stored with every assessment: a change to how
/// conditions evaluate or results aggregate gets a new version.
public enum Engine {
    public static let version = "oversight-engine/2"
}

/// What one rule said about one record. Stored findings carry the rule's id, citation, title,
/// severity and points with the facts and missing fields; the rule's rationale and remediation
/// stay in the pack, which the assessment names by SHA-256 (so they are fixed, and not repeated
/// in millions of rows): the `oversight.findings` view joins them back.
public struct Finding: Sendable, Hashable {
    public enum Outcome: String, Sendable { case fired, needsInformation = "needs_information" }
    /// Number of the rule in its pack.
    let rule: Int
    public let ruleID: String
    public let outcome: Outcome
    public let severity: Verdict
    public let points: Int
    public let title: String
    public let citation: String
    /// For `fired`: the facts of the record that made it fire, by field path.
    public let facts: [String: JSONValue]
    /// For `needs_information`: the absent fields that decide the rule, sorted.
    public let missing: [String]
    public let rationale: String
    public let remediation: String

    var canonicalJSON: JSONValue {
        .object([
            ("citation", .string(citation)),
            ("facts", .object(facts.map { ($0.key, $0.value) })),
            ("missing", .array(missing.map(JSONValue.string))),
            ("outcome", .string(outcome.rawValue)),
            ("points", .number(Double(points))),
            ("rule", .string(ruleID)),
            ("severity", .string(severity.rawValue)),
            ("title", .string(title)),
        ])
    }
}

/// The assessment of one record against one pack.
public struct PackResult: Sendable, Hashable {
    public let packID: String
    public let packVersion: String
    public let packSHA256: [UInt8]
    public let applies: Applicability
    public let verdict: Verdict
    public let score: Int
    public let findings: [Finding]
    /// Most severe fired severity, and most severe blocking unknown: for aggregating packs.
    let worstFired: Verdict
    let worstBlockingUnknown: Verdict?
    /// Missing fields of every rule that needs information, reported or not.
    let missingFields: FieldSet

    var canonicalJSON: JSONValue {
        .object([
            ("applies", .string(applies.rawValue)),
            ("findings", .array(findings.map(\.canonicalJSON))),
            ("pack", .object([("id", .string(packID)), ("sha256", .string(packSHA256.hexString)), ("version", .string(packVersion))])),
            ("score", .number(Double(score))),
            ("verdict", .string(verdict.rawValue)),
        ])
    }
}

/// The assessment of one record against a criteria set: the overall verdict and score, each
/// pack's result, and every missing fact that blocks or weakens a conclusion.
public struct AssessmentResult: Sendable, Hashable {
    public let engine: String
    public let verdict: Verdict
    public let score: Int
    public let packs: [PackResult]
    /// Every field whose absence leaves a rule undecided, in any pack, sorted.
    public let missing: [String]
    let criteria: CriteriaSet

    public static func == (a: AssessmentResult, b: AssessmentResult) -> Bool {
        a.engine == b.engine && a.verdict == b.verdict && a.score == b.score && a.packs == b.packs && a.missing == b.missing
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(verdict); hasher.combine(score); hasher.combine(packs) }

    /// The canonical JSON bytes, written directly from precomputed fragments: the same bytes as
    /// `canonicalJSON.canonicalBytes`, several times faster (it is on the hot path of every worker).
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(2048)
        out += Array(#"{"engine":"#.utf8)
        JSONValue.writeString(engine, into: &out)
        out += Array(#","missing":["#.utf8)
        for (i, field) in missing.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONValue.writeString(field, into: &out)
        }
        out += Array(#"],"packs":["#.utf8)
        for (p, result) in packs.enumerated() {
            if p > 0 { out.append(UInt8(ascii: ",")) }
            let pack = criteria.packs[p]
            out += Array(#"{"applies":""#.utf8) + Array(result.applies.rawValue.utf8) + Array(#"","findings":["#.utf8)
            for (f, finding) in result.findings.enumerated() {
                if f > 0 { out.append(UInt8(ascii: ",")) }
                let rule = pack.rules[finding.rule]
                out += rule.findingHead
                out.append(UInt8(ascii: "{"))
                for (k, key) in finding.facts.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    JSONValue.writeString(key, into: &out)
                    out.append(UInt8(ascii: ":"))
                    finding.facts[key]!.writeCanonical(into: &out)
                }
                out += Array(#"},"missing":["#.utf8)
                for (m, field) in finding.missing.enumerated() {
                    if m > 0 { out.append(UInt8(ascii: ",")) }
                    JSONValue.writeString(field, into: &out)
                }
                out.append(UInt8(ascii: "]"))
                out += finding.outcome == .fired ? rule.firedTail : rule.unknownTail
            }
            out += pack.resultMiddle
            out += Array(String(result.score).utf8)
            out += Array(#","verdict":""#.utf8) + Array(result.verdict.rawValue.utf8) + Array(#""}"#.utf8)
        }
        out += Array(#"],"score":"#.utf8) + Array(String(score).utf8)
        out += Array(#","verdict":""#.utf8) + Array(verdict.rawValue.utf8) + Array(#""}"#.utf8)
        return out
    }

    /// The `result` column and part of the row hash: same input, same packs → same bytes.
    public var canonicalJSON: JSONValue {
        .object([
            ("engine", .string(engine)),
            ("missing", .array(missing.map(JSONValue.string))),
            ("packs", .array(packs.map(\.canonicalJSON))),
            ("score", .number(Double(score))),
            ("verdict", .string(verdict.rawValue)),
        ])
    }

    public var findings: [Finding] { packs.flatMap(\.findings) }
}

extension CriteriaPack {
    /// Scores one validated record against this pack. Pure and deterministic.
    ///
    /// Verdict: the most severe severity among fired rules (`minimal` when none fired), unless a
    /// rule of a blocking severity needs information and is more severe still: then
    /// `insufficient_information`. Score: the points of fired rules plus `unknown_weight` times
    /// the largest points of a reported rule that needs information, at most 100, rounded half up.
    /// A rule with `report_unknown: false` that needs information is no finding; its missing
    /// fields still join the assessment's missing information.
    public func assess(_ record: JSONValue) -> PackResult {
        assess(RecordFacts(record, table: table), record: record)
    }

    func assess(_ facts: RecordFacts, record: JSONValue) -> PackResult {
        var evaluation = Evaluation(facts: facts, program: program)
        var findings: [Finding] = []
        var worstFired: Verdict = .minimal
        var worstUnknown: Verdict? = nil
        var points = 0.0
        var largestUnknown = 0
        var allMissing = FieldSet()
        for index in rules.indices {
            let rule = rules[index]
            var fields = FieldSet()
            let root = program.ruleRoots[index]
            switch evaluation.evaluate(root, missing: &fields) {
            case .no: continue
            case .yes:
                worstFired = min(worstFired, rule.severity)
                points += Double(rule.points)
                evaluation.decidingFacts(root, into: &fields)
                var deciding: [String: JSONValue] = [:]
                for field in fields.members { deciding[table.fields[field].path] = facts.values[field] ?? .null }
                findings.append(Finding(rule: index, ruleID: rule.id, outcome: .fired, severity: rule.severity, points: rule.points,
                                        title: rule.title, citation: rule.citation, facts: deciding, missing: [],
                                        rationale: rule.rationale, remediation: rule.remediation))
            case .unknown:
                allMissing.formUnion(fields)
                if rule.blocksVerdict && blockingSeverities.contains(rule.severity) {
                    worstUnknown = worstUnknown.map { min($0, rule.severity) } ?? rule.severity
                }
                guard rule.reportsUnknown else { continue }
                largestUnknown = max(largestUnknown, rule.points)
                findings.append(Finding(rule: index, ruleID: rule.id, outcome: .needsInformation, severity: rule.severity, points: rule.points,
                                        title: rule.title, citation: rule.citation, facts: [:],
                                        missing: fields.members.map { table.fields[$0].path },
                                        rationale: rule.rationale, remediation: rule.remediation))
            }
        }
        points += unknownWeight * Double(largestUnknown)
        var verdict = worstFired
        if let worstUnknown, worstUnknown < worstFired { verdict = .insufficientInformation }
        return PackResult(packID: id, packVersion: version, packSHA256: sha256, applies: applicability(for: record),
                          verdict: verdict, score: min(100, Int(points.rounded(.toNearestOrAwayFromZero))),
                          findings: findings, worstFired: worstFired, worstBlockingUnknown: worstUnknown,
                          missingFields: allMissing)
    }

    public func applicability(for record: JSONValue) -> Applicability {
        guard !bindingIn.isEmpty else { return .benchmark }
        guard let country = record["operator"]?["country"]?.stringValue else { return .undetermined }
        return bindingIn.contains(country.uppercased()) ? .binding : .benchmark
    }
}

/// The packs a batch is assessed with, in order. Its SHA-256 identifies it in the audit store:
/// for one pack, that pack's own hash; for several, the hash of their hashes in order.
public struct CriteriaSet: Sendable {
    public let packs: [CriteriaPack]
    public let sha256: [UInt8]

    public init(_ packs: [CriteriaPack]) {
        precondition(!packs.isEmpty, "a criteria set has at least one pack")
        precondition(packs.allSatisfy { $0.table === packs[0].table }, "the packs of a set are compiled against one record schema")
        self.packs = packs
        sha256 = Self.hash(packs.map(\.sha256))
    }

    public static func hash(_ packHashes: [[UInt8]]) -> [UInt8] {
        packHashes.count == 1 ? packHashes[0] : AuditHash.sha256(packHashes.flatMap { $0 })
    }

    /// The built-in packs: EU AI Act, GDPR DPIA, privacy baseline.
    public static var builtIn: CriteriaSet { CriteriaSet(CriteriaPack.builtIn) }

    /// Overall verdict: the most severe fired severity over all packs, unless a blocking unknown
    /// in any pack is more severe (then `insufficient_information`). Overall score: the highest
    /// pack score.
    public func assess(_ record: JSONValue) -> AssessmentResult {
        let facts = RecordFacts(record, table: packs[0].table)
        let results = packs.map { $0.table === packs[0].table ? $0.assess(facts, record: record) : $0.assess(record) }
        let worstFired = results.map(\.worstFired).min() ?? .minimal
        let worstUnknown = results.compactMap(\.worstBlockingUnknown).min()
        var verdict = worstFired
        if let worstUnknown, worstUnknown < worstFired { verdict = .insufficientInformation }
        var missing = FieldSet()
        for result in results { missing.formUnion(result.missingFields) }
        return AssessmentResult(engine: Engine.version, verdict: verdict, score: results.map(\.score).max() ?? 0,
                                packs: results, missing: missing.members.map { packs[0].table.fields[$0].path }, criteria: self)
    }
}

/// SHA-256 helpers for the audit trail.
public enum AuditHash {
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

    /// Hash of a record's canonical JSON: the same facts give the same hash whatever the spacing
    /// or key order of the submitted text.
    public static func input(_ record: JSONValue) -> [UInt8] { sha256(record.canonicalBytes) }

    /// Hash of an assessment row: batch, sequence, input hash, criteria hash and canonical result,
    /// length-prefixed so that no two rows can collide by shifting bytes between fields.
    public static func row(batchID: String, seq: Int64, inputSHA256: [UInt8], criteriaSHA256: [UInt8], result: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        for part in [Array(batchID.utf8), Array(String(seq).utf8), inputSHA256, criteriaSHA256, result] {
            var length = UInt64(part.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: part)
        }
        return Array(hasher.finalize())
    }
}
