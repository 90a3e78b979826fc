public import Assessment

/// What `explain` prints: the settled verdict and why, what it could still be and the questions
/// that decide it, then (with `all`) the rest.
public enum Explanation {
    /// How many questions lead before the rest are folded away.
    static let leading = 3

    public static func prose(_ result: AssessmentResult, record: JSONValue, criteria: CriteriaSet, all: Bool) -> String {
        var out = ""
        let name = record["id"]?.stringValue.map { "Record \($0)" } ?? "The record"
        out += "\(name): \(Verdict.range(result.verdict, result.worstCase))\n"
        out += "  score \(result.score) of 100\(result.determined ? "" : ", \(result.worstCaseScore) at worst"); the law as of \(result.asOf)"
        out += result.restsOnInferred ? "; rests on facts read from the record's text\n" : "\n"
        let inferred = Dictionary(result.inferred.map { ($0.field, $0) }, uniquingKeysWith: { a, _ in a })

        // What is settled, and why.
        let fired = zip(criteria.packs, result.packs).flatMap { pack, packResult in
            packResult.findings.filter { $0.outcome == .fired }.map { (pack: pack, result: packResult, finding: $0) }
        }
        let rules = fired.filter { $0.finding.definition.threshold == nil }
        let criteriaMet = fired.filter { $0.finding.definition.threshold != nil }
        out += "\nSettled: \(result.verdict.rawValue)"
        if rules.isEmpty {
            out += " — no rule fires on the known facts.\n"
        } else {
            out += ", because:\n"
            for item in rules.sorted(by: { $0.finding.severity < $1.finding.severity }) {
                let f = item.finding
                out += "  • \(f.title) — \(f.severity.rawValue), \(plural(f.points, "point")) (\(f.ruleID))\n"
                out += "    \(f.citation); \(applies(item.pack, item.result))\n"
                let facts = f.facts.sorted { $0.key < $1.key }.map { fact in
                    let value = "\(fact.key) = \(fact.value == .null ? "not documented" : fact.value.canonicalString)"
                    guard f.inferred.contains(fact.key), let from = inferred[fact.key] else { return value }
                    return value + " (\(from.strength == .stated ? "stated" : "implied") by \(describe(from)))"
                }
                if !facts.isEmpty { out += "    Because: \(facts.joined(separator: "; "))\n" }
                out += "    Why: \(f.rationale)\n"
                out += "    What to do: \(f.remediation)\n"
            }
        }
        if !criteriaMet.isEmpty {
            out += "  Criteria met that count toward a threshold (not findings of their own):\n"
            for item in criteriaMet {
                let f = item.finding, threshold = f.definition.threshold!
                let met = criteriaMet.filter { $0.pack === item.pack && $0.finding.definition.threshold == threshold }.count
                out += "  • \(f.title) (\(f.ruleID)) — counts toward \(threshold.rules.joined(separator: ", ")), which needs \(threshold.atLeast) of its \(threshold.of) criteria: \(met) are met\n"
            }
        }

        if !result.inferred.isEmpty || !result.conflicts.isEmpty {
            out += "\nRead from the record's text (declared facts always win):\n"
            for fact in result.inferred {
                out += "  • \(fact.field) = \(fact.value.canonicalString): \(fact.strength.rawValue), by \(describe(fact))\n"
            }
            for conflict in result.conflicts {
                out += "  • conflict: \(conflict.inferred.field) is declared \(conflict.declared.canonicalString), but \(describe(conflict.inferred)) says \(conflict.inferred.value.canonicalString); the declared value counts\n"
            }
        }

        // What it could still be, and what to ask.
        if !result.determined {
            out += "\nCould be \(result.worstCase.rawValue), if the open facts turn out worst. Ask first:\n"
            let shown = all ? result.questions : Array(result.questions.prefix(leading))
            for (i, question) in shown.enumerated() {
                out += describe(question, number: i + 1, criteria: criteria, settled: result.verdict)
            }
            let rest = result.questions.count - shown.count
            if rest > 0 { out += "  \(plural(rest, "more question")) (--all lists them).\n" }
        } else {
            out += "\nDetermined: no open fact could change the verdict.\n"
        }

        // Pack by pack.
        out += "\nBy pack:\n"
        for (pack, packResult) in zip(criteria.packs, result.packs) {
            out += "  \(pack.title) (\(pack.id) \(pack.version)) — \(applies(pack, packResult))\n"
            out += "    \(Verdict.range(packResult.verdict, packResult.worstCase)); score \(packResult.score)"
            out += packResult.determined ? "\n" : " (\(packResult.worstCaseScore) at worst)\n"
            if !packResult.rulesNotInForce.isEmpty {
                out += "    Not yet in force on \(result.asOf): \(packResult.rulesNotInForce.map { "\($0.id) (from \($0.appliesFrom!))" }.joined(separator: ", "))\n"
            }
            guard all else { continue }
            let open = packResult.findings.filter { $0.outcome == .needsInformation }
            for finding in open {
                out += "    open: \(finding.ruleID) (\(finding.severity.rawValue)) — \(finding.title); unknown: \(finding.missing.joined(separator: ", "))\n"
            }
            let decided = Set(packResult.findings.map(\.ruleID)).union(packResult.rulesNotInForce.map(\.id))
            for rule in pack.rules where !decided.contains(rule.id) {
                out += "    does not apply: \(rule.id) — \(rule.title)\n"
            }
        }
        out += "\nNot legal advice: an assessment of the facts stated against the packs' reading of the law (\(criteria.packs.compactMap(\.source).joined(separator: "; "))).\n"
        return out
    }

    /// Where an inferred fact comes from: the span and its text field, or the register entry.
    public static func describe(_ fact: InferredFact) -> String {
        if fact.source.hasPrefix("register:") { return "the vendor register (\(fact.pattern)): \"\(fact.span)\"" }
        return "\(fact.source) \"\(fact.span)\" (pattern \(fact.pattern))"
    }

    static func describe(_ question: Question, number: Int, criteria: CriteriaSet, settled: Verdict) -> String {
        var out = "  \(number). \(question.text)\n"
        out += "     Asks for: \(question.fields.joined(separator: ", "))\n"
        let titles = question.rules.prefix(2).map { id -> String in
            guard let rule = criteria.packs.lazy.compactMap({ $0.rules.first { $0.id == id } }).first else { return id }
            return "\(rule.id) (\(rule.severity.rawValue): \(rule.title))"
        }
        let more = question.rules.count > 2 ? " and \(plural(question.rules.count - 2, "more rule"))" : ""
        out += "     Decides: \(titles.joined(separator: "; "))\(more)\n"
        let worst = question.ifWorst == settled ? "it stays \(settled.rawValue)" : "it becomes \(question.ifWorst.rawValue)"
        let best = question.ifBest == settled ? "nothing worse than \(settled.rawValue) remains" : "it could still be \(question.ifBest.rawValue)"
        out += "     If the answer is the worst, \(worst); if the best, \(best).\n"
        return out
    }

    public static func applies(_ pack: CriteriaPack, _ result: PackResult) -> String {
        switch result.applies {
        case .binding: "binds in law here"
        case .benchmark: pack.bindingIn.isEmpty ? "a benchmark" : "applies as a benchmark (the operator is outside where it binds)"
        case .undetermined: "binding or not depends on operator.country, which is unknown"
        }
    }
}

/// "1 record", "2 records".
func plural(_ count: some BinaryInteger, _ noun: String, _ plural: String? = nil) -> String {
    "\(count) \(count == 1 ? noun : plural ?? noun + "s")"
}
