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
            #expect(set.assess(record).canonicalJSON.canonicalBytes == set.assess(record).canonicalJSON.canonicalBytes)
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
            let before = set.assess(record)
            var changes = Self.safeguards.map { [$0] }
            changes.append(Self.completeFRIA)
            for change in changes {
                var safer = record
                for (field, value) in change { safer.set(path: ["safeguards", field], value) }
                let after = set.assess(safer)
                #expect(after.score <= before.score, "\(change.map(\.field)) raised the score of \(record.canonicalString)")
                #expect(worstFired(after) >= worstFired(before), "\(change.map(\.field)) made a more severe rule fire for \(record.canonicalString)")
                if before.verdict != .insufficientInformation && after.verdict != .insufficientInformation {
                    #expect(after.verdict >= before.verdict, "\(change.map(\.field)) worsened the verdict of \(record.canonicalString)")
                }
            }
        }
    }

    /// Removing facts one by one never takes a `prohibited` record to `minimal` without passing
    /// through `insufficient_information`.
    @Test func removingFactsNeverSkipsInsufficientInformation() {
        var rng = SplitMix64(seed: 5)
        var prohibitedSeen = 0
        for record in records where set.assess(record).verdict == .prohibited {
            prohibitedSeen += 1
            for _ in 0..<4 {
                var current = record
                var previous = Verdict.prohibited
                var leaves = current.leafPaths
                while !leaves.isEmpty {
                    let path = leaves.remove(at: Int(rng.next() % UInt64(leaves.count)))
                    current.remove(path: path)
                    let verdict = set.assess(current).verdict
                    if previous == .prohibited {
                        #expect(verdict == .prohibited || verdict == .insufficientInformation,
                                "removing \(path.joined(separator: ".")) took \(record.canonicalString) from prohibited to \(verdict.rawValue)")
                    }
                    previous = verdict
                }
            }
        }
        #expect(prohibitedSeen > 20)
    }
}

extension JSONValue {
    /// Paths of the members that are not objects (facts), e.g. ["system", "type"].
    var leafPaths: [[String]] {
        guard case .object(let members) = self else { return [] }
        return members.flatMap { member -> [[String]] in
            if case .object = member.value { return member.value.leafPaths.map { [member.key] + $0 } }
            return [[member.key]]
        }
    }

    mutating func remove(path: [String]) {
        guard case .object(var members) = self, let key = path.first, let i = members.firstIndex(where: { $0.key == key }) else { return }
        if path.count == 1 { members.remove(at: i) } else { members[i].value.remove(path: Array(path.dropFirst())) }
        self = .object(members)
    }
}
