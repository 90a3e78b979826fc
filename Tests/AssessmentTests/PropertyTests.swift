import Testing
import TestSupport
@testable import Assessment

/// Properties of the engine over many records: generated ones and every rule-table case.
@Suite struct PropertyTests {
    let set = CriteriaSet.builtIn

    var records: [JSONValue] {
        Array(SyntheticDeployments(count: 2_000, seed: 11)) + ruleCases.map { try! JSONParser.parse($0.record) }
    }

    /// Most severe severity among fired rules, over all packs.
    func worstFired(_ result: AssessmentResult) -> Verdict {
        result.findings.filter { $0.outcome == .fired }.map(\.severity).min() ?? .minimal
    }

    @Test func evaluationIsDeterministic() {
        for record in records {
            #expect(set.assess(record, asOf: testDate).canonicalJSON.canonicalBytes == set.assess(record, asOf: testDate).canonicalJSON.canonicalBytes)
        }
    }

    static let safeguards: [(field: String, value: JSONValue)] = [
        ("prior_authorisation", .bool(true)), ("targeted_individual", .bool(true)), ("national_law_authorises", .bool(true)),
        ("eu_database_registered", .bool(true)), ("dpia_done", .bool(true)), ("human_review", .bool(true)),
        ("notice", .bool(true)), ("redress", .bool(true)), ("strictly_necessary", .bool(true)),
    ]

    static let completeFRIA: [(field: String, value: JSONValue)] = [
        ("fria_done", .bool(true)),
        ("fria_elements", .array(["processes", "period_and_frequency", "affected_categories", "risks_of_harm", "human_oversight",
                                  "mitigation_and_complaints"].map(JSONValue.string))),
    ]

    /// Adding a safeguard never raises the score and never makes a more severe rule fire.
    @Test func addingASafeguardNeverMakesThingsWorse() {
        for record in records {
            let before = set.assess(record, asOf: testDate)
            var changes = Self.safeguards.map { [$0] }
            changes.append(Self.completeFRIA)
            for change in changes {
                var safer = record
                for (field, value) in change { safer.set(path: ["safeguards", field], value) }
                let after = set.assess(safer, asOf: testDate)
                #expect(after.score <= before.score, "\(change.map(\.field)) raised the score of \(record.canonicalString)")
                #expect(worstFired(after) >= worstFired(before), "\(change.map(\.field)) made a more severe rule fire for \(record.canonicalString)")
                #expect(after.worstCase >= before.worstCase, "\(change.map(\.field)) worsened the worst case of \(record.canonicalString)")
            }
        }
    }

    /// Rules about what a record documents ("no accuracy figure is documented") test `exists`:
    /// two-valued by nature, an absent field makes them fire and answering it can take them back.
    /// They are left out of the monotonicity properties, by name.
    static let documentationRules: Set<String> = ["pb-accuracy-undocumented"]

    @Test func theDocumentationRulesAreExactlyThoseTestingExists() throws {
        var found: Set<String> = []
        for file in EmbeddedSchemas.files where file.name.hasSuffix(".json") && !file.name.hasSuffix(".schema.json") {
            guard case .array(let rules)? = try JSONParser.parse(file.text)["rules"] else { continue }
            for rule in rules where rule["when"]!.canonicalString.contains(#""exists":"#) { found.insert(rule["id"]!.stringValue!) }
        }
        #expect(found == Self.documentationRules)
    }

    /// Settled verdict and worst case over every pack, leaving the documentation rules out.
    func range(_ result: AssessmentResult) -> (settled: Verdict, worst: Verdict) {
        let findings = result.findings.filter { !Self.documentationRules.contains($0.ruleID) }
        return (findings.filter { $0.outcome == .fired }.map(\.severity).min() ?? .minimal, findings.map(\.severity).min() ?? .minimal)
    }

    /// A value the schema allows for `path`, chosen by `rng`.
    static func randomValue(_ path: String, _ rng: inout SplitMix64) -> JSONValue {
        let schema = RecordSchema.deployment.property(atPath: path)!
        if let values = schema.allowedValues, !values.isEmpty {
            if schema.isArray {
                let chosen = values.filter { _ in rng.next() % 3 == 0 }
                return .array(chosen.map(JSONValue.string))
            }
            return .string(values[Int(rng.next() % UInt64(values.count))])
        }
        switch schema.types {
        case ["boolean"]?: return .bool(rng.next() % 2 == 0)
        case ["integer"]?, ["number"]?: return .number(Double([0, 5, 31, 91, 1_000, 20_000, 150_000][Int(rng.next() % 7)]))
        default: return .string("answered")
        }
    }

    /// Three-valued logic is monotone: giving an absent field a value never makes the settled
    /// verdict less severe and never makes the worst case more severe; the worst case is never
    /// less severe than the settled verdict; answering every question leaves it determined.
    @Test func answeringAnOpenQuestionOnlyNarrowsTheRange() {
        var rng = SplitMix64(seed: 12)
        var narrowed = 0
        for record in records {
            let before = set.assess(record, asOf: testDate)
            #expect(before.worstCase <= before.verdict)
            for pack in before.packs { #expect(pack.worstCase <= pack.verdict) }
            #expect(before.determined == (before.verdict == before.worstCase))
            #expect(before.determined == before.questions.isEmpty, "questions exactly when undetermined: \(record.canonicalString)")
            let (settled, worst) = range(before)
            for question in before.questions.prefix(4) {
                var answered = record
                answered.set(path: question.path.split(separator: ".").map(String.init), Self.randomValue(question.path, &rng))
                let after = set.assess(answered, asOf: testDate)
                let (newSettled, newWorst) = range(after)
                #expect(newSettled <= settled, "answering \(question.path) lowered the settled verdict of \(record.canonicalString)")
                #expect(newWorst >= worst, "answering \(question.path) raised the worst case of \(record.canonicalString)")
                if newSettled != settled || newWorst != worst { narrowed += 1 }
                // The answer lands within what the question said it could do.
                #expect(after.verdict >= question.ifWorst || Self.documentationRules.contains(question.rules[0]),
                        "answering \(question.path) made it \(after.verdict), worse than its worst \(question.ifWorst)")
            }
            var all = record
            for question in before.questions {
                all.set(path: question.path.split(separator: ".").map(String.init), Self.randomValue(question.path, &rng))
            }
            let answered = set.assess(all, asOf: testDate)
            let (s, w) = range(answered)
            #expect(s == w, "answering every question left \(all.canonicalString) undetermined: \(answered.questions.map(\.path))")
        }
        #expect(narrowed > 1_000, "answers must often move the range for the property to mean anything: \(narrowed)")
    }

    /// Rules apply from their date: before 2 February 2025 no prohibition of the AI Act counts;
    /// between then and 2 August 2026 the prohibitions do and the Annex III obligations do not.
    @Test func theLawAppliesAsOfItsDates() throws {
        let pack = try #require(CriteriaPack.builtIn(id: "eu-ai-act-2024"))
        let record = try JSONParser.parse(#"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"real_time"},"context":{"settings":["publicly_accessible"],"law_enforcement_objective":"general"}}"#)
        let early = pack.assess(record, asOf: CalendarDate("2025-01-31")!)
        #expect(early.verdict == .minimal && early.worstCase == .minimal && early.rulesNotInForce.count == pack.rules.count)
        let between = pack.assess(record, asOf: CalendarDate("2026-01-15")!)
        #expect(between.verdict == .prohibited)
        #expect(between.rulesNotInForce.map(\.id).contains("ai-act-annex-iii-1-a"))
        #expect(!between.rulesNotInForce.contains { $0.id.hasPrefix("ai-act-5-") })
        let now = pack.assess(record, asOf: testDate)
        #expect(now.rulesNotInForce.isEmpty)
        #expect(now.findings.contains { $0.ruleID == "ai-act-annex-iii-1-a" && $0.outcome == .fired })
        let json = CriteriaSet([pack]).assess(record, asOf: CalendarDate("2026-01-15")!).canonicalJSON.canonicalString
        #expect(json.hasPrefix(#"{"as_of":"2026-01-15","#) && json.contains(#""not_in_force":["ai-act-annex-iii-1-a","#))
    }
}
