import Testing
import TestSupport
@testable import Assessment

/// The compiled evaluator (every node once, two-bit Kleene codes, definitions folded into their
/// roots) against a plain recursive reading of three-valued logic, on random conditions over
/// generated records: the same truth and the same missing fields for every rule.
@Suite struct EvaluationTests {
    let table = FieldTable.deployment

    /// Kleene's logic, written the obvious way: an absent field is unknown; a composite is
    /// unknown only when its known parts cannot decide it, and then its missing fields are its
    /// unknown parts'.
    func reference(_ condition: Condition, _ definitions: [Condition], _ facts: RecordFacts) -> (Truth, Set<Int>) {
        switch condition {
        case .leaf(let field, let test):
            let truth = Evaluation.apply(test, field: field, facts.facts[field], facts)
            return (truth, truth == .unknown ? [field] : [])
        case .ref(let i):
            return reference(definitions[i], definitions, facts)
        case .not(let inner):
            let (truth, missing) = reference(inner, definitions, facts)
            return (truth == .yes ? .no : truth == .no ? .yes : .unknown, missing)
        case .all(let parts), .any(let parts), .atLeast(_, let parts):
            let values = parts.map { reference($0, definitions, facts) }
            let yes = values.filter { $0.0 == .yes }.count
            let unknown = values.filter { $0.0 == .unknown }.count
            let needed: Int
            switch condition {
            case .all: needed = parts.count
            case .any: needed = 1
            case .atLeast(let n, _): needed = n
            default: fatalError("unreachable")
            }
            if yes >= needed { return (.yes, []) }
            if yes + unknown < needed { return (.no, []) }
            return (.unknown, values.filter { $0.0 == .unknown }.reduce(into: Set()) { $0.formUnion($1.1) })
        }
    }

    func randomLeaf(_ random: inout SplitMix64) -> Condition {
        let field = Int(random.next() % UInt64(table.fields.count))
        let spec = table.fields[field]
        let mask = random.next() & (spec.values.isEmpty ? 0 : (1 << UInt64(spec.values.count)) - 1)
        switch random.next() % 4 {
        case 0: return .leaf(field, .exists(random.next() % 2 == 0))
        case 1 where !spec.values.isEmpty: return .leaf(field, spec.isArray ? (random.next() % 2 == 0 ? .anyOf(mask) : .allOf(mask)) : .symbolIn(mask))
        case 2: return .leaf(field, .boolEquals(random.next() % 2 == 0))
        default: return .leaf(field, .compare(Condition.Comparison.allCases[Int(random.next() % 4)], Double(random.next() % 2000) / 4))
        }
    }

    func randomCondition(_ random: inout SplitMix64, depth: Int, definitions: Int) -> Condition {
        if depth == 0 || random.next() % 4 == 0 {
            return definitions > 0 && random.next() % 4 == 0 ? .ref(Int(random.next() % UInt64(definitions))) : randomLeaf(&random)
        }
        let parts = (0..<Int(1 + random.next() % 4)).map { _ in randomCondition(&random, depth: depth - 1, definitions: definitions) }
        switch random.next() % 4 {
        case 0: return .all(parts)
        case 1: return .any(parts)
        case 2: return .not(parts[0])
        default: return .atLeast(Int(random.next() % UInt64(parts.count + 1)), parts)
        }
    }

    @Test func agreesWithPlainThreeValuedLogic() {
        var random = SplitMix64(seed: 99)
        let records = Array(SyntheticDeployments(count: 300, seed: 4))
        var seen: [Truth: Int] = [:]
        for _ in 0..<40 {
            var definitions: [Condition] = []
            for i in 0..<6 { definitions.append(randomCondition(&random, depth: 3, definitions: i)) }
            let rules = (0..<12).map { _ in randomCondition(&random, depth: 4, definitions: definitions.count) }
            let program = ConditionProgram(definitions: definitions, rules: rules)
            for record in records {
                let facts = RecordFacts(record, table: table)
                let compiled: [(Truth, Set<Int>)] = program.evaluate(facts) { evaluation in
                    program.ruleRoots.map { root in
                        var missing = FieldSet()
                        let code = evaluation.code(root)
                        if code == Evaluation.unknown { evaluation.missing(root, into: &missing) }
                        return (Evaluation.truth(code), Set(missing.members))
                    }
                }
                for (i, rule) in rules.enumerated() {
                    let expected = reference(rule, definitions, facts)
                    seen[expected.0, default: 0] += 1
                    if compiled[i].0 != expected.0 || compiled[i].1 != expected.1 {
                        Issue.record("rule \(i) \(rule): compiled \(compiled[i]), reference \(expected)")
                        return
                    }
                }
            }
        }
        // All three values must have come up often for the agreement to mean anything.
        #expect(seen.values.count == 3 && seen.values.allSatisfy { $0 > 10_000 }, "\(seen)")
    }

    /// The built-in packs over generated records and every rule case: the settled verdict, the
    /// worst case and the fields asked about, from the plain evaluator's truth of every rule,
    /// against the engine's — per pack and overall.
    @Test func verdictWorstCaseAndQuestionsAgreeWithPlainThreeValuedLogic() throws {
        let records = Array(SyntheticDeployments(count: 1_500, seed: 21)) + ruleCases.map { try! JSONParser.parse($0.record) }
        let set = CriteriaSet.builtIn
        var undetermined = 0
        for record in records {
            let facts = RecordFacts(record, table: table)
            let result = set.assess(record, asOf: testDate)
            var overall: (settled: Verdict, worst: Verdict) = (.minimal, .minimal)
            var open: [(severity: Verdict, missing: Set<Int>)] = []
            for (p, pack) in set.packs.enumerated() {
                var settled = Verdict.minimal, worst = Verdict.minimal
                var packOpen: [(severity: Verdict, missing: Set<Int>)] = []
                for rule in pack.rules {
                    let (truth, missing) = reference(rule.condition, pack.definitions, facts)
                    if truth == .yes { settled = min(settled, rule.severity); worst = min(worst, rule.severity) }
                    if truth == .unknown { worst = min(worst, rule.severity); packOpen.append((rule.severity, missing)) }
                }
                let packResult = result.packs[p]
                #expect(packResult.verdict == settled && packResult.worstCase == worst, "\(pack.id): \(record.canonicalString)")
                let asked = packOpen.filter { $0.severity < settled }.reduce(into: Set<Int>()) { $0.formUnion($1.missing) }
                #expect(Set(packResult.questions.map(\.field)) == asked, "\(pack.id) questions: \(record.canonicalString)")
                overall = (min(overall.settled, settled), min(overall.worst, worst))
                open += packOpen
            }
            #expect(result.verdict == overall.settled && result.worstCase == overall.worst)
            let asked = open.filter { $0.severity < overall.settled }.reduce(into: Set<Int>()) { $0.formUnion($1.missing) }
            #expect(Set(result.questions.map(\.field)) == asked, "questions: \(record.canonicalString)")
            #expect(result.questions.map(\.path) == result.questions.map { table.fields[$0.field].path })
            if !result.determined { undetermined += 1 }
        }
        #expect(undetermined > 500, "open assessments must be common for the agreement to mean anything: \(undetermined)")
    }
}
