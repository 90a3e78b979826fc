import Crypto

/// The version of the rule engine's semantics and stored format, stored with every assessment:
/// a change to how conditions evaluate, results aggregate or results are written gets a new one.
/// 4: an assessment gives the settled verdict (what the known facts establish), the worst case
/// (what the open facts could still make it) and the open questions ranked by how likely each
/// is to move the verdict; rules apply from a date and an assessment is made as of one; stored
/// findings are the fired rules (the open ones are named by the questions). 3: findings name
/// their rule and carry outcome, severity, points, facts and missing fields.
public enum Engine {
    public static let version = "oversight-engine/4"
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
    /// For `fired`: the facts among `factList` that were inferred from the record's text, not declared.
    public var inferred: [String] = []

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

    /// A fired finding as stored: its facts (when any), outcome, points, rule and severity.
    var canonicalJSON: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if !factList.isEmpty { members.append(("facts", .object(factList.map { ($0.path, $0.value) }))) }
        if !inferred.isEmpty { members.append(("inferred", .array(inferred.map(JSONValue.string)))) }
        members += [
            ("outcome", .string(outcome.rawValue)),
            ("points", .number(Double(points))),
            ("rule", .string(ruleID)),
            ("severity", .string(severity.rawValue)),
        ]
        return .object(members)
    }
}

/// A fired rule, as plain bits: what scoring produces (no reference counting, no strings);
/// `PackResult.findings` turns them into `Finding`s when someone asks.
struct Outcome: Sendable, Hashable {
    let rule: Int32
    /// The fields whose facts decided it.
    let fields: FieldSet
}

/// A rule the known facts leave open, with what each absent field could do to it.
struct OpenRule: Sendable, Hashable {
    let rule: Int32
    let severity: Verdict
    let points: Int
    /// The absent fields that leave it open.
    let missing: FieldSet
    /// Fields that, answered alone, can make it fire; and those that can rule it out.
    let canFire: FieldSet
    let canRuleOut: FieldSet
    /// How much of its condition the known facts satisfy (0 to 1).
    let satisfaction: Double
}

/// The open rules one assessment (or one pack of it) asks about, in lead order, shared by its
/// questions: each names the rules it decides by their places here.
final class RankedRules: Sendable {
    let rules: [CriteriaPack.Rule]
    let table: FieldTable
    init(_ rules: [CriteriaPack.Rule], _ table: FieldTable) { self.rules = rules; self.table = table }
}

/// One open fact, asked of whoever can answer it, with what the answer could do.
public struct Question: Sendable, Hashable {
    let field: Int
    let ranked: RankedRules
    /// The places in `ranked` of the rules it decides: bits of `small` while there are at most
    /// 64 rules, `large` beyond.
    let small: UInt64
    let large: [Int32]?
    /// The settled verdict if the answer turns out worst.
    public let ifWorst: Verdict
    /// The worst case if the answer turns out best.
    public let ifBest: Verdict
    /// Whether this answer alone can settle its lead rule (make it fire or rule it out).
    public let settlesLead: Bool

    /// The fact's schema path.
    public var path: String { ranked.table.fields[field].path }
    /// The question in plain words (the schema's `x-question` for the field).
    public var text: String { ranked.table.fields[field].question }
    /// Schema paths of the facts asked for.
    public var fields: [String] { [path] }
    /// The open rules it decides, the one it decides first (its lead) first.
    public var decidedRules: [CriteriaPack.Rule] {
        var out: [CriteriaPack.Rule] = []
        forEachDecided { out.append($0) }
        return out
    }
    /// Ids of the open rules it decides, its lead first.
    public var rules: [String] { decidedRules.map(\.id) }

    @inline(__always)
    func forEachDecided(_ body: (CriteriaPack.Rule) -> Void) {
        if let large {
            for place in large { body(ranked.rules[Int(place)]) }
            return
        }
        var rest = small
        while rest != 0 {
            body(ranked.rules[rest.trailingZeroBitCount])
            rest &= rest - 1
        }
    }

    public static func == (a: Question, b: Question) -> Bool {
        a.field == b.field && a.ifWorst == b.ifWorst && a.ifBest == b.ifBest && a.settlesLead == b.settlesLead
            && a.rules == b.rules
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(field); hasher.combine(ifWorst); hasher.combine(ifBest) }

    var canonicalJSON: JSONValue {
        .object([
            ("fields", .array(fields.map(JSONValue.string))),
            ("if_best", .string(ifBest.rawValue)),
            ("if_worst", .string(ifWorst.rawValue)),
            ("rules", .array(rules.map(JSONValue.string))),
        ])
    }
}

/// Ranks the open facts of an assessment (or of one pack) by how likely each is to move the
/// verdict. Only rules more severe than the settled verdict can move it; the others are not
/// asked about. A field's lead rule is the first of the rules it decides in this order: most
/// severe; most of its condition satisfied by the known facts; fewest open fields; rule id.
/// Questions are ordered by their lead's severity; then a fact the lead tests outside its
/// exceptions before one only its exceptions test (an exception matters once the rest holds);
/// then by the lead's satisfaction, open fields and id; then an answer that alone can settle the
/// lead before one that cannot; then by field path (fields are numbered in path order).
enum QuestionRanking {
    struct Candidate {
        let open: OpenRule
        /// The rule's place among the ids of the rules ranked together.
        let order: Int32
        /// The rule's fields outside its exceptions.
        let core: FieldSet
        /// Its pack, by number among those ranked together (plain values only: a candidate is
        /// copied while sorting, and a reference would be retained and released each time).
        let pack: Int32

        static func precedes(_ a: Candidate, _ b: Candidate) -> Bool {
            if a.open.severity != b.open.severity { return a.open.severity < b.open.severity }
            if a.open.satisfaction != b.open.satisfaction { return a.open.satisfaction > b.open.satisfaction }
            let am = a.open.missing.count, bm = b.open.missing.count
            if am != bm { return am < bm }
            return a.order < b.order
        }
    }

    static func rank(_ candidates: [Candidate], settled: Verdict, packs: [CriteriaPack], table: FieldTable) -> [Question] {
        candidates.withUnsafeBufferPointer { all in
            // Indices, not copies: a candidate is large.
            var relevant = all.indices.filter { all[$0].open.severity < settled }
            guard !relevant.isEmpty else { return [] }
            relevant.sort { Candidate.precedes(all[$0], all[$1]) }
            let ranked = RankedRules(relevant.map { packs[Int(all[$0].pack)].rules[Int(all[$0].open.rule)] }, table)
            let fieldCount = table.fields.count
            var asked = FieldSet()
            for i in relevant { asked.formUnion(all[i].open.missing) }
            // Per field: the rules it decides (as places in `relevant`), and what its answer can
            // do at worst and at best — rule by rule over the fields each names.
            return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: fieldCount) { decided in
                withUnsafeTemporaryAllocation(of: (worst: Verdict, best: Verdict).self, capacity: fieldCount) { range in
                    asked.forEach { decided[$0] = 0; range[$0] = (settled, settled) }
                    for (position, i) in relevant.enumerated() {
                        let open = all[i].open
                        if position < 64 { open.missing.forEach { decided[$0] |= 1 << UInt64(position) } }
                        open.canFire.forEach { if asked.contains($0) { range[$0].worst = min(range[$0].worst, open.severity) } }
                        // A field that cannot rule this rule out leaves it possible.
                        asked.forEach { if !open.canRuleOut.contains($0) { range[$0].best = min(range[$0].best, open.severity) } }
                    }
                    var leads: [(lead: Int32, core: Bool, settles: Bool, field: Int32)] = []
                    leads.reserveCapacity(asked.count)
                    asked.forEach { field in
                        let lead = relevant.count <= 64 ? decided[field].trailingZeroBitCount
                            : relevant.firstIndex { all[$0].open.missing.contains(field) }!
                        let open = all[relevant[lead]].open
                        leads.append((Int32(lead), all[relevant[lead]].core.contains(field),
                                      open.canFire.contains(field) || open.canRuleOut.contains(field), Int32(field)))
                    }
                    leads.sort { a, b in
                        let sa = all[relevant[Int(a.lead)]].open.severity, sb = all[relevant[Int(b.lead)]].open.severity
                        if sa != sb { return sa < sb }
                        if a.core != b.core { return a.core }
                        // `relevant` is in lead order: earlier is more satisfied, has fewer fields, an earlier id.
                        if a.lead != b.lead { return a.lead < b.lead }
                        if a.settles != b.settles { return a.settles }
                        return a.field < b.field
                    }
                    return leads.map { entry in
                        let field = Int(entry.field)
                        let large: [Int32]? = relevant.count <= 64 ? nil
                            : relevant.indices.filter { all[relevant[$0]].open.missing.contains(field) }.map(Int32.init)
                        return Question(field: field, ranked: ranked, small: large == nil ? decided[field] : 0, large: large,
                                        ifWorst: range[field].worst, ifBest: range[field].best, settlesLead: entry.settles)
                    }
                }
            }
        }
    }
}

/// The assessment of one record against one pack.
public struct PackResult: Sendable, Hashable {
    let pack: CriteriaPack
    /// The record assessed, for the facts a fired finding reports.
    let record: JSONValue
    public let applies: Applicability
    /// What the known facts establish: the most severe fired rule's severity (`minimal` if none).
    public let verdict: Verdict
    /// The most severe outcome the open facts could still make it.
    public let worstCase: Verdict
    /// The points of fired rules, at most 100.
    public let score: Int
    /// The points of fired rules and of every open rule, at most 100.
    public let worstCaseScore: Int
    let fired: [Outcome]
    let open: [OpenRule]
    /// Rules not yet in force on the assessment's date, by number.
    let notInForce: [Int32]
    /// The open facts that could move this pack's verdict, ranked.
    public let questions: [Question]
    /// Fields whose facts were inferred from the record's text.
    let inferredFields: FieldSet

    public var determined: Bool { verdict == worstCase }
    /// Whether the settled verdict rests on inferred facts: every fired rule of its severity
    /// reads one (without them it would not stand; a rule settled on declared facts alone holds it).
    public var restsOnInferred: Bool {
        let settling = fired.filter { pack.rules[Int($0.rule)].severity == verdict }
        return !settling.isEmpty && settling.allSatisfy { !$0.fields.intersection(inferredFields).isEmpty }
    }
    public var packID: String { pack.id }
    /// The ids of the rules that fired, in pack order (what the stored findings name).
    public var firedRuleIDs: [String] { fired.map { pack.rules[Int($0.rule)].id } }
    public var packVersion: String { pack.version }
    public var packSHA256: [UInt8] { pack.sha256 }
    /// The rules not yet in force on the date the assessment was made as of.
    public var rulesNotInForce: [CriteriaPack.Rule] { notInForce.map { pack.rules[Int($0)] } }

    /// The findings: fired rules (with the facts that made them fire) and open rules (with the
    /// absent fields that leave them open), in pack order.
    public var findings: [Finding] {
        var out: [Finding] = []
        var f = 0, o = 0
        while f < fired.count || o < open.count {
            if o == open.count || (f < fired.count && fired[f].rule < open[o].rule) {
                var facts: [Finding.Fact] = []
                fired[f].fields.forEach { field in
                    facts.append(Finding.Fact(path: pack.table.fields[field].path,
                                              value: RecordFacts.value(of: field, in: record, pack.table) ?? .null))
                }
                var finding = Finding(definition: pack.rules[Int(fired[f].rule)], outcome: .fired, factList: facts,
                                      missingFields: FieldSet(), table: pack.table)
                finding.inferred = fired[f].fields.intersection(inferredFields).members.map { pack.table.fields[$0].path }
                out.append(finding)
                f += 1
            } else {
                out.append(Finding(definition: pack.rules[Int(open[o].rule)], outcome: .needsInformation, factList: [],
                                   missingFields: open[o].missing, table: pack.table))
                o += 1
            }
        }
        return out
    }

    public static func == (a: PackResult, b: PackResult) -> Bool {
        a.pack === b.pack && a.applies == b.applies && a.verdict == b.verdict && a.worstCase == b.worstCase && a.score == b.score
            && a.worstCaseScore == b.worstCaseScore && a.fired == b.fired && a.open == b.open && a.notInForce == b.notInForce
            && a.questions == b.questions && a.record == b.record
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(pack)); hasher.combine(verdict); hasher.combine(worstCase); hasher.combine(score); hasher.combine(fired)
    }

    var canonicalJSON: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("applies", .string(applies.rawValue)),
            ("determined", .bool(determined)),
            ("findings", .array(findings.filter { $0.outcome == .fired }.map(\.canonicalJSON))),
        ]
        if !notInForce.isEmpty { members.append(("not_in_force", .array(rulesNotInForce.map { .string($0.id) }))) }
        members += [
            ("pack", .object([("id", .string(packID)), ("sha256", .string(packSHA256.hexString)), ("version", .string(packVersion))])),
            ("questions", .array(questions.map(\.canonicalJSON))),
            ("rests_on", .string(restsOnInferred ? "inferred" : "declared")),
            ("score", .number(Double(score))),
            ("verdict", .string(verdict.rawValue)),
            ("worst_case", .string(worstCase.rawValue)),
            ("worst_case_score", .number(Double(worstCaseScore))),
        ]
        return .object(members)
    }
}

/// The assessment of one record against a criteria set, as of a date: the settled verdict, the
/// worst case and the questions between them, overall and for each pack.
public struct AssessmentResult: Sendable, Hashable {
    public let engine: String
    /// The day the law is applied as of: rules not yet in force then do not count.
    public let asOf: CalendarDate
    /// What the known facts establish, over all packs.
    public let verdict: Verdict
    /// What the open facts could still make it, over all packs.
    public let worstCase: Verdict
    /// The highest pack score, and the highest pack worst-case score.
    public let score: Int
    public let worstCaseScore: Int
    public let packs: [PackResult]
    /// The open facts that could move the overall verdict, ranked.
    public let questions: [Question]
    /// The facts inferred from the record's text that counted (declared ones always win), and
    /// those that disagreed with a declared fact.
    public let inferred: [InferredFact]
    public let conflicts: [EvidenceConflict]
    let criteria: CriteriaSet

    public var determined: Bool { verdict == worstCase }
    /// Whether the settled verdict rests on inferred facts: every pack that settles it does so on them.
    public var restsOnInferred: Bool {
        let settling = packs.filter { $0.verdict == verdict && !$0.fired.isEmpty }
        return !settling.isEmpty && settling.allSatisfy(\.restsOnInferred)
    }

    public static func == (a: AssessmentResult, b: AssessmentResult) -> Bool {
        a.engine == b.engine && a.asOf == b.asOf && a.verdict == b.verdict && a.worstCase == b.worstCase && a.score == b.score
            && a.worstCaseScore == b.worstCaseScore && a.packs == b.packs && a.questions == b.questions && a.inferred == b.inferred
            && a.conflicts == b.conflicts
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(verdict); hasher.combine(worstCase); hasher.combine(score); hasher.combine(packs) }

    /// The canonical JSON bytes, written directly from precomputed fragments: the same bytes as
    /// `canonicalJSON.canonicalBytes`, several times faster (it is on the hot path of every worker).
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(2048)
        let table = criteria.packs[0].table
        // Fragments are read through buffers and static strings: no reference counting per piece.
        table.quotedPaths.withReader { paths in
            Self.append("{\"as_of\":\"", to: &out)
            out += asOf.description.utf8
            out.append(UInt8(ascii: "\""))
            if !conflicts.isEmpty {
                Self.append(",\"conflicts\":", to: &out)
                JSONValue.array(conflicts.map(\.json)).writeCanonical(into: &out)
            }
            Self.append(",\"determined\":", to: &out)
            Self.append(determined ? "true" : "false", to: &out)
            Self.append(",\"engine\":", to: &out)
            JSONValue.writeString(engine, into: &out)
            if !inferred.isEmpty {
                Self.append(",\"inferred\":", to: &out)
                JSONValue.array(inferred.map(\.json)).writeCanonical(into: &out)
            }
            Self.append(",\"packs\":[", to: &out)
            for p in packs.indices {
                if p > 0 { out.append(UInt8(ascii: ",")) }
                let result = packs[p]
                let pack = criteria.packs[p]
                Self.append("{\"applies\":\"", to: &out)
                out += result.applies.rawValue.utf8
                Self.append("\",\"determined\":", to: &out)
                Self.append(result.determined ? "true" : "false", to: &out)
                Self.append(",\"findings\":[", to: &out)
                pack.findingTails.withReader { tails in
                    for f in result.fired.indices {
                        if f > 0 { out.append(UInt8(ascii: ",")) }
                        let outcome = result.fired[f]
                        out.append(UInt8(ascii: "{"))
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
                            out.append(UInt8(ascii: "}"))
                            let inferredFacts = outcome.fields.intersection(result.inferredFields)
                            if !inferredFacts.isEmpty {
                                Self.append(",\"inferred\":[", to: &out)
                                var firstPath = true
                                inferredFacts.forEach { field in
                                    if !firstPath { out.append(UInt8(ascii: ",")) }
                                    firstPath = false
                                    paths.append(field, to: &out)
                                }
                                out.append(UInt8(ascii: "]"))
                            }
                            out.append(UInt8(ascii: ","))
                        }
                        tails.append(Int(outcome.rule), to: &out)
                    }
                }
                out.append(UInt8(ascii: "]"))
                if !result.notInForce.isEmpty {
                    Self.append(",\"not_in_force\":[", to: &out)
                    for (i, rule) in result.notInForce.enumerated() {
                        if i > 0 { out.append(UInt8(ascii: ",")) }
                        out += pack.rules[Int(rule)].quotedID
                    }
                    out.append(UInt8(ascii: "]"))
                }
                out += pack.resultMiddle
                writeQuestions(result.questions, paths, into: &out)
                Self.append(result.restsOnInferred ? ",\"rests_on\":\"inferred\"" : ",\"rests_on\":\"declared\"", to: &out)
                Self.append(",\"score\":", to: &out)
                out += String(result.score).utf8
                Self.append(",\"verdict\":\"", to: &out)
                out += result.verdict.rawValue.utf8
                Self.append("\",\"worst_case\":\"", to: &out)
                out += result.worstCase.rawValue.utf8
                Self.append("\",\"worst_case_score\":", to: &out)
                out += String(result.worstCaseScore).utf8
                out.append(UInt8(ascii: "}"))
            }
            Self.append("],\"questions\":", to: &out)
            writeQuestions(questions, paths, into: &out)
            Self.append(restsOnInferred ? ",\"rests_on\":\"inferred\"" : ",\"rests_on\":\"declared\"", to: &out)
            Self.append(",\"score\":", to: &out)
            out += String(score).utf8
            Self.append(",\"verdict\":\"", to: &out)
            out += verdict.rawValue.utf8
            Self.append("\",\"worst_case\":\"", to: &out)
            out += worstCase.rawValue.utf8
            Self.append("\",\"worst_case_score\":", to: &out)
            out += String(worstCaseScore).utf8
            out.append(UInt8(ascii: "}"))
        }
        return out
    }

    private func writeQuestions(_ questions: [Question], _ paths: ByteTable.Reader, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (i, question) in questions.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            Self.append("{\"fields\":[", to: &out)
            paths.append(question.field, to: &out)
            Self.append("],\"if_best\":\"", to: &out)
            out += question.ifBest.rawValue.utf8
            Self.append("\",\"if_worst\":\"", to: &out)
            out += question.ifWorst.rawValue.utf8
            Self.append("\",\"rules\":[", to: &out)
            var first = true
            question.forEachDecided { rule in
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                out += rule.quotedID
            }
            Self.append("]}", to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    @inline(__always)
    private static func append(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// The `result` column and part of the row hash: same input, same packs, same date → same bytes.
    public var canonicalJSON: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("as_of", .string(asOf.description))]
        if !conflicts.isEmpty { members.append(("conflicts", .array(conflicts.map(\.json)))) }
        members += [("determined", .bool(determined)), ("engine", .string(engine))]
        if !inferred.isEmpty { members.append(("inferred", .array(inferred.map(\.json)))) }
        return .object(members + [
            ("packs", .array(packs.map(\.canonicalJSON))),
            ("questions", .array(questions.map(\.canonicalJSON))),
            ("rests_on", .string(restsOnInferred ? "inferred" : "declared")),
            ("score", .number(Double(score))),
            ("verdict", .string(verdict.rawValue)),
            ("worst_case", .string(worstCase.rawValue)),
            ("worst_case_score", .number(Double(worstCaseScore))),
        ])
    }

    public var findings: [Finding] { packs.flatMap(\.findings) }
}

extension CriteriaPack {
    /// Scores one validated record against this pack, as of a date. Pure and deterministic.
    ///
    /// Three-valued: a rule fires when the known facts make its condition true, and is open
    /// when they leave it unknown. Verdict: the most severe fired rule's severity (`minimal`
    /// when none fired) — an open rule never erases it. Worst case: the most severe fired or
    /// open rule's. Score: the points of fired rules; worst-case score: those and the open
    /// rules' points; both at most 100. A rule whose `applies_from` is after `asOf` is not in
    /// force and counts for nothing.
    /// The record's inferred facts count as `evidence` says, where no declared fact says otherwise.
    public func assess(_ record: JSONValue, asOf: CalendarDate, evidence: EvidenceUse = .all) -> PackResult {
        let merged = Evidence.merge(record, evidence)
        let facts = RecordFacts(merged.record, table: table)
        let result = assess(facts, record: merged.record, asOf: asOf)
        return PackResult(pack: self, record: merged.record, applies: result.applies, verdict: result.verdict, worstCase: result.worstCase,
                          score: result.score, worstCaseScore: result.worstCaseScore, fired: result.fired, open: result.open,
                          notInForce: result.notInForce,
                          questions: QuestionRanking.rank(result.open.map { .init(open: $0, order: idOrder[Int($0.rule)], core: coreFields[Int($0.rule)], pack: 0) },
                                                          settled: result.verdict, packs: [self], table: table),
                          inferredFields: Evidence.fields(merged.used, table))
    }

    /// A pack's result before its questions are ranked.
    struct Scored {
        let applies: Applicability
        let verdict: Verdict
        let worstCase: Verdict
        let score: Int
        let worstCaseScore: Int
        let fired: [Outcome]
        let open: [OpenRule]
        let notInForce: [Int32]
    }

    func assess(_ facts: RecordFacts, record: JSONValue, asOf: CalendarDate) -> Scored {
        var fired: [Outcome] = []
        var open: [OpenRule] = []
        var notInForce: [Int32] = []
        var settled: Verdict = .minimal, worst: Verdict = .minimal
        var points = 0, openPoints = 0
        program.evaluate(facts) { evaluation in
            var pending: [(rule: Int32, root: Int32, missing: FieldSet)] = []
            scoring.withUnsafeBufferPointer { scoring in
                for index in scoring.indices {
                    let rule = scoring[index]
                    if let from = rule.appliesFrom, asOf < from { notInForce.append(Int32(index)); continue }
                    var fields = FieldSet()
                    switch evaluation.code(rule.root) {
                    case Evaluation.no: continue
                    case Evaluation.yes:
                        settled = min(settled, rule.severity)
                        worst = min(worst, rule.severity)
                        points += rule.points
                        evaluation.decidingFacts(rule.root, into: &fields)
                        fired.append(Outcome(rule: Int32(index), fields: fields))
                    default:
                        worst = min(worst, rule.severity)
                        openPoints += rule.points
                        evaluation.missing(rule.root, into: &fields)
                        pending.append((Int32(index), rule.root, fields))
                    }
                }
            }
            // What each absent field could do and how far the facts go: worked out only when an
            // open rule could move the verdict (is more severe than it).
            let asked = pending.contains { scoring[Int($0.rule)].severity < settled }
            guard asked else {
                for p in pending {
                    let rule = scoring[Int(p.rule)]
                    open.append(OpenRule(rule: p.rule, severity: rule.severity, points: rule.points, missing: p.missing,
                                         canFire: FieldSet(), canRuleOut: FieldSet(), satisfaction: 0))
                }
                return
            }
            let count = program.nodes.count
            withUnsafeTemporaryAllocation(of: FieldSet.self, capacity: count) { canFire in
                withUnsafeTemporaryAllocation(of: FieldSet.self, capacity: count) { canRuleOut in
                    withUnsafeTemporaryAllocation(of: Double.self, capacity: count) { satisfied in
                        evaluation.forcing(yes: canFire, no: canRuleOut)
                        evaluation.satisfactions(into: satisfied)
                        for p in pending {
                            let rule = scoring[Int(p.rule)]
                            open.append(OpenRule(rule: p.rule, severity: rule.severity, points: rule.points, missing: p.missing,
                                                 canFire: canFire[Int(p.root)].intersection(p.missing),
                                                 canRuleOut: canRuleOut[Int(p.root)].intersection(p.missing),
                                                 satisfaction: satisfied[Int(p.root)]))
                        }
                    }
                }
            }
        }
        return Scored(applies: applicability(facts), verdict: settled, worstCase: worst, score: min(100, points),
                      worstCaseScore: min(100, points + openPoints), fired: fired, open: open, notInForce: notInForce)
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
    /// Per pack and rule, its place among the ids of every rule of the set (for ranking questions).
    let idOrder: [[Int32]]

    public init(_ packs: [CriteriaPack]) {
        precondition(!packs.isEmpty, "a criteria set has at least one pack")
        precondition(packs.allSatisfy { $0.table === packs[0].table }, "the packs of a set are compiled against one record schema")
        self.packs = packs
        sha256 = Self.hash(packs.map(\.sha256))
        let all = packs.enumerated().flatMap { p, pack in pack.rules.indices.map { (id: pack.rules[$0].id, pack: p, rule: $0) } }
            .sorted { $0.id != $1.id ? $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) : $0.pack < $1.pack }
        var order = packs.map { [Int32](repeating: 0, count: $0.rules.count) }
        for (n, entry) in all.enumerated() { order[entry.pack][entry.rule] = Int32(n) }
        idOrder = order
    }

    public static func hash(_ packHashes: [[UInt8]]) -> [UInt8] {
        packHashes.count == 1 ? packHashes[0] : AuditHash.sha256(packHashes.flatMap { $0 })
    }

    /// The built-in packs: EU AI Act, GDPR DPIA, privacy baseline.
    public static var builtIn: CriteriaSet { CriteriaSet(CriteriaPack.builtIn) }

    /// Overall: the most severe settled verdict and the most severe worst case of any pack, the
    /// highest scores, and the questions over every pack's open rules, ranked against the
    /// overall settled verdict.
    /// The record's inferred facts (its `inferred` list) count as `evidence` says — declared
    /// facts always win, and a disagreement is reported in `conflicts`.
    public func assess(_ record: JSONValue, asOf: CalendarDate, evidence: EvidenceUse = .all) -> AssessmentResult {
        let table = packs[0].table
        let merged = Evidence.merge(record, evidence)
        let record = merged.record
        let inferredFields = Evidence.fields(merged.used, table)
        let facts = RecordFacts(record, table: table)
        var results: [PackResult] = []
        results.reserveCapacity(packs.count)
        var settled: Verdict = .minimal, worst: Verdict = .minimal
        var score = 0, worstScore = 0
        var candidates: [QuestionRanking.Candidate] = []
        for p in packs.indices {
            let pack = packs[p]
            let scored = pack.assess(facts, record: record, asOf: asOf)
            settled = min(settled, scored.verdict)
            worst = min(worst, scored.worstCase)
            score = max(score, scored.score)
            worstScore = max(worstScore, scored.worstCaseScore)
            let own = scored.open.map {
                QuestionRanking.Candidate(open: $0, order: pack.idOrder[Int($0.rule)], core: pack.coreFields[Int($0.rule)], pack: 0)
            }
            // Overall, rules are ordered by id across the packs.
            let overall = own.map { QuestionRanking.Candidate(open: $0.open, order: idOrder[p][Int($0.open.rule)], core: $0.core, pack: Int32(p)) }
            candidates += overall
            results.append(PackResult(pack: pack, record: record, applies: scored.applies, verdict: scored.verdict,
                                      worstCase: scored.worstCase, score: scored.score, worstCaseScore: scored.worstCaseScore,
                                      fired: scored.fired, open: scored.open, notInForce: scored.notInForce,
                                      questions: QuestionRanking.rank(own, settled: scored.verdict, packs: [pack], table: table),
                                      inferredFields: inferredFields))
        }
        return AssessmentResult(engine: Engine.version, asOf: asOf, verdict: settled, worstCase: worst, score: score,
                                worstCaseScore: worstScore, packs: results,
                                questions: QuestionRanking.rank(candidates, settled: settled, packs: packs, table: table),
                                inferred: merged.used, conflicts: merged.conflicts, criteria: self)
    }
}

/// A short, public, stable name for a key in logs and pages: the first 16 bytes of its SHA-256,
/// as SSH does.
public func keyFingerprint(_ publicKey: [UInt8]) -> String {
    "SHA256:" + AuditHash.sha256(publicKey).prefix(16).hexString
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
