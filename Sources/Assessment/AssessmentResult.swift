import Crypto

/// The version of the rule engine's semantics and stored format, stored with every assessment:
/// a change to how conditions evaluate, results aggregate or results are written gets a new one.
/// 3: stored findings name their rule and carry outcome, severity, points, facts and missing
/// fields; the rule's title and citation, like its rationale and remediation, stay in the pack
/// that the assessment names by SHA-256 (`oversight.findings` joins them back).
public enum Engine {
    public static let version = "oversight-engine/3"
}

/// What one rule said about one record. Holds its rule by reference, so the title, citation,
/// rationale and remediation are the pack's own and cost nothing to carry.
public struct Finding: Sendable, Hashable {
    public enum Outcome: String, Sendable { case fired, needsInformation = "needs_information" }
    /// The rule, as compiled in its pack.
    public let definition: CriteriaPack.Rule
    public let outcome: Outcome
    /// A fact of the record that made the rule fire.
    public struct Fact: Sendable, Hashable {
        public let path: String
        public let value: JSONValue
    }
    /// For `fired`: the facts of the record that made it fire, sorted by field path.
    public let factList: [Fact]
    /// For `needs_information`: the absent fields that decide the rule.
    let missingFields: FieldSet
    let table: FieldTable

    public var ruleID: String { definition.id }
    public var severity: Verdict { definition.severity }
    public var points: Int { definition.points }
    public var title: String { definition.title }
    public var citation: String { definition.citation }
    public var rationale: String { definition.rationale }
    public var remediation: String { definition.remediation }
    public var facts: [String: JSONValue] { Dictionary(uniqueKeysWithValues: factList.map { ($0.path, $0.value) }) }
    /// The absent fields that decide the rule, sorted.
    public var missing: [String] { missingFields.members.map { table.fields[$0].path } }

    public static func == (a: Finding, b: Finding) -> Bool {
        a.definition === b.definition && a.outcome == b.outcome && a.missingFields == b.missingFields
            && a.factList == b.factList
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(definition)); hasher.combine(outcome); hasher.combine(missingFields)
    }

    /// Empty facts and missing lists are left out.
    var canonicalJSON: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if !factList.isEmpty { members.append(("facts", .object(factList.map { ($0.path, $0.value) }))) }
        if !missingFields.isEmpty { members.append(("missing", .array(missing.map(JSONValue.string)))) }
        members += [
            ("outcome", .string(outcome.rawValue)),
            ("points", .number(Double(points))),
            ("rule", .string(ruleID)),
            ("severity", .string(severity.rawValue)),
        ]
        return .object(members)
    }
}

/// One rule's outcome, as plain bits: what scoring produces (no reference counting, no
/// strings); `PackResult.findings` turns them into `Finding`s when someone asks.
struct Outcome: Sendable, Hashable {
    let rule: Int32
    let fired: Bool
    /// Fired: the fields whose facts decided it. Needs information: the absent deciding fields.
    let fields: FieldSet
}

/// The assessment of one record against one pack.
public struct PackResult: Sendable, Hashable {
    let pack: CriteriaPack
    /// The record assessed, for the facts a fired finding reports.
    let record: JSONValue
    public let applies: Applicability
    public let verdict: Verdict
    public let score: Int
    let outcomes: [Outcome]
    /// Most severe fired severity, and most severe blocking unknown: for aggregating packs.
    let worstFired: Verdict
    let worstBlockingUnknown: Verdict?
    /// Missing fields of every rule that needs information, reported or not.
    let missingFields: FieldSet

    public var packID: String { pack.id }
    public var packVersion: String { pack.version }
    public var packSHA256: [UInt8] { pack.sha256 }

    /// The findings: fired rules and reported rules that need information, in pack order.
    public var findings: [Finding] {
        outcomes.map { outcome in
            var facts: [Finding.Fact] = []
            if outcome.fired {
                outcome.fields.forEach { field in
                    facts.append(Finding.Fact(path: pack.table.fields[field].path,
                                              value: RecordFacts.value(of: field, in: record, pack.table) ?? .null))
                }
            }
            return Finding(definition: pack.rules[Int(outcome.rule)], outcome: outcome.fired ? .fired : .needsInformation,
                           factList: facts, missingFields: outcome.fired ? FieldSet() : outcome.fields, table: pack.table)
        }
    }

    public static func == (a: PackResult, b: PackResult) -> Bool {
        a.pack === b.pack && a.applies == b.applies && a.verdict == b.verdict && a.score == b.score
            && a.outcomes == b.outcomes && a.missingFields == b.missingFields && a.record == b.record
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(pack)); hasher.combine(verdict); hasher.combine(score); hasher.combine(outcomes)
    }

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
    /// Every field whose absence leaves a rule undecided, in any pack.
    let missingFields: FieldSet
    let criteria: CriteriaSet

    /// Every field whose absence leaves a rule undecided, in any pack, sorted.
    public var missing: [String] { missingFields.members.map { criteria.packs[0].table.fields[$0].path } }

    public static func == (a: AssessmentResult, b: AssessmentResult) -> Bool {
        a.engine == b.engine && a.verdict == b.verdict && a.score == b.score && a.packs == b.packs && a.missingFields == b.missingFields
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(verdict); hasher.combine(score); hasher.combine(packs) }

    /// The canonical JSON bytes, written directly from precomputed fragments: the same bytes as
    /// `canonicalJSON.canonicalBytes`, several times faster (it is on the hot path of every worker).
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1536)
        let table = criteria.packs[0].table
        // Fragments are read through buffers and static strings: no reference counting per piece.
        table.quotedPaths.withReader { paths in
            Self.append("{\"engine\":", to: &out)
            JSONValue.writeString(engine, into: &out)
            Self.append(",\"missing\":[", to: &out)
            Self.writePaths(missingFields, paths, into: &out)
            Self.append("],\"packs\":[", to: &out)
            for p in packs.indices {
                if p > 0 { out.append(UInt8(ascii: ",")) }
                let result = packs[p]
                Self.append("{\"applies\":\"", to: &out)
                out += result.applies.rawValue.utf8
                Self.append("\",\"findings\":[", to: &out)
                criteria.packs[p].findingTails.withReader { tails in
                    for f in result.outcomes.indices {
                        if f > 0 { out.append(UInt8(ascii: ",")) }
                        let outcome = result.outcomes[f]
                        out.append(UInt8(ascii: "{"))
                        if outcome.fired {
                            if !outcome.fields.isEmpty {
                                Self.append("\"facts\":{", to: &out)
                                var first = true
                                outcome.fields.forEach { field in
                                    if !first { out.append(UInt8(ascii: ",")) }
                                    first = false
                                    paths.append(field, to: &out)
                                    out.append(UInt8(ascii: ":"))
                                    (RecordFacts.value(of: field, in: result.record, table) ?? .null).writeCanonical(into: &out)
                                }
                                Self.append("},", to: &out)
                            }
                            tails.append(2 * Int(outcome.rule), to: &out)
                        } else {
                            if !outcome.fields.isEmpty {
                                Self.append("\"missing\":[", to: &out)
                                Self.writePaths(outcome.fields, paths, into: &out)
                                Self.append("],", to: &out)
                            }
                            tails.append(2 * Int(outcome.rule) + 1, to: &out)
                        }
                    }
                }
                out += criteria.packs[p].resultMiddle
                out += String(result.score).utf8
                Self.append(",\"verdict\":\"", to: &out)
                out += result.verdict.rawValue.utf8
                Self.append("\"}", to: &out)
            }
            Self.append("],\"score\":", to: &out)
            out += String(score).utf8
            Self.append(",\"verdict\":\"", to: &out)
            out += verdict.rawValue.utf8
            Self.append("\"}", to: &out)
        }
        return out
    }

    @inline(__always)
    private static func append(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Field paths as a JSON array body (no brackets); field numbers follow path order.
    private static func writePaths(_ fields: FieldSet, _ paths: ByteTable.Reader, into out: inout [UInt8]) {
        var first = true
        fields.forEach { field in
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            paths.append(field, to: &out)
        }
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
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(rules.count)
        var worstFired: Verdict = .minimal
        var worstUnknown: Verdict? = nil
        var points = 0
        var largestUnknown = 0
        var allMissing = FieldSet()
        program.evaluate(facts) { evaluation in
            scoring.withUnsafeBufferPointer { scoring in
                for index in scoring.indices {
                    let rule = scoring[index]
                    var fields = FieldSet()
                    switch evaluation.code(rule.root) {
                    case Evaluation.no: continue
                    case Evaluation.yes:
                        worstFired = min(worstFired, rule.severity)
                        points += rule.points
                        evaluation.decidingFacts(rule.root, into: &fields)
                        outcomes.append(Outcome(rule: Int32(index), fired: true, fields: fields))
                    default:
                        evaluation.missing(rule.root, into: &fields)
                        allMissing.formUnion(fields)
                        if rule.blocking {
                            worstUnknown = worstUnknown.map { min($0, rule.severity) } ?? rule.severity
                        }
                        guard rule.reporting else { continue }
                        largestUnknown = max(largestUnknown, rule.points)
                        outcomes.append(Outcome(rule: Int32(index), fired: false, fields: fields))
                    }
                }
            }
        }
        let total = Double(points) + unknownWeight * Double(largestUnknown)
        var verdict = worstFired
        if let worstUnknown, worstUnknown < worstFired { verdict = .insufficientInformation }
        return PackResult(pack: self, record: record, applies: applicability(facts),
                          verdict: verdict, score: min(100, Int(total.rounded(.toNearestOrAwayFromZero))),
                          outcomes: outcomes, worstFired: worstFired, worstBlockingUnknown: worstUnknown,
                          missingFields: allMissing)
    }

    public func applicability(for record: JSONValue) -> Applicability {
        applicability(country: record["operator"]?["country"]?.stringValue.map { $0.uppercased() })
    }

    func applicability(country: String?) -> Applicability {
        guard !bindingIn.isEmpty else { return .benchmark }
        guard let country else { return .undetermined }
        return bindingIn.contains(country) ? .binding : .benchmark
    }

    func applicability(_ facts: RecordFacts) -> Applicability {
        guard !bindingIn.isEmpty else { return .benchmark }
        if let code = facts.countryCode { return bindingCodes[Int(code) >> 6] & (1 << UInt64(code & 63)) != 0 ? .binding : .benchmark }
        return applicability(country: facts.countryText)
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
        var results: [PackResult] = []
        results.reserveCapacity(packs.count)
        var worstFired: Verdict = .minimal
        var worstUnknown: Verdict? = nil
        var missing = FieldSet()
        var score = 0
        for p in packs.indices {
            let result = packs[p].table === packs[0].table ? packs[p].assess(facts, record: record) : packs[p].assess(record)
            worstFired = min(worstFired, result.worstFired)
            if let unknown = result.worstBlockingUnknown { worstUnknown = worstUnknown.map { min($0, unknown) } ?? unknown }
            missing.formUnion(result.missingFields)
            score = max(score, result.score)
            results.append(result)
        }
        var verdict = worstFired
        if let worstUnknown, worstUnknown < worstFired { verdict = .insufficientInformation }
        return AssessmentResult(engine: Engine.version, verdict: verdict, score: score, packs: results, missingFields: missing, criteria: self)
    }
}

/// SHA-256 helpers for the audit trail.
public enum AuditHash {
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }

    /// Hash of a record's canonical JSON: the same facts give the same hash whatever the spacing
    /// or key order of the submitted text.
    public static func input(_ record: JSONValue) -> [UInt8] { sha256(record.canonicalBytes) }

    /// Hash of an assessment row: batch, sequence, input hash, criteria hash and canonical result,
    /// length-prefixed so that no two rows can collide by shifting bytes between fields.
    public static func row(batchID: String, seq: Int64, inputSHA256: [UInt8], criteriaSHA256: [UInt8], result: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        func part(_ bytes: UnsafeRawBufferPointer) {
            var length = UInt64(bytes.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(bufferPointer: bytes)
        }
        var batch = batchID
        batch.withUTF8 { part(UnsafeRawBufferPointer($0)) }
        var decimal = String(seq)
        decimal.withUTF8 { part(UnsafeRawBufferPointer($0)) }
        inputSHA256.withUnsafeBytes(part)
        criteriaSHA256.withUnsafeBytes(part)
        result.withUnsafeBytes(part)
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }
}
