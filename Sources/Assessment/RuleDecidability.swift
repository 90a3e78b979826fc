/// Rules whose condition no facts can settle one way: one that can never fire can only stay
/// open or be ruled out, so it never settles anything and, while its fields are unknown, makes
/// the worst case look worse than anything the facts could bear out; one that fires whatever
/// the facts is no test at all. `criteria validate` explains both.
extension CriteriaPack {
    public struct DegenerateRule: Sendable, Hashable, CustomStringConvertible {
        public let index: Int
        public let rule: String
        /// True: no facts make it fire. False: every set of facts does.
        public let neverFires: Bool
        /// The fields its condition reads.
        public let fields: [String]

        public var description: String {
            let read = fields.joined(separator: ", ")
            return neverFires
                ? "rule \(rule) can never fire: no values of the fields it reads (\(read)) make its condition true, so it can never settle a verdict and, while they are unknown, only makes the worst case look worse; check for tests that contradict each other"
                : "rule \(rule) fires whatever the facts: every value of the fields it reads (\(read)) makes its condition true, so it tests nothing; check its condition"
        }
    }

    /// Searches, rule by rule, for facts that make the condition true and for facts that make it
    /// false: fields are given candidate values one at a time (each value its tests tell apart,
    /// and absence where a test asks whether the field exists), and a branch is dropped as soon
    /// as three-valued evaluation of the partial facts decides it (sound: Kleene's logic never
    /// decides what a completion could change). A rule whose search runs past `budget`
    /// evaluations is not reported.
    public func degenerateRules(budget: Int = 100_000) -> [DegenerateRule] {
        var found: [DegenerateRule] = []
        for index in rules.indices {
            let fields = ruleFields(index)
            guard !fields.isEmpty else { continue }
            var spent = 0
            let canFire = reach(index, .yes, fields, 0, .object([]), &spent, budget)
            spent = 0
            let canFail = reach(index, .no, fields, 0, .object([]), &spent, budget)
            let paths = fields.map { table.fields[$0.field].path }.sorted()
            if canFire == false { found.append(DegenerateRule(index: index, rule: rules[index].id, neverFires: true, fields: paths)) }
            if canFail == false { found.append(DegenerateRule(index: index, rule: rules[index].id, neverFires: false, fields: paths)) }
        }
        return found
    }

    /// A field a rule reads and the values to try for it (nil: absent).
    struct SearchField {
        let field: Int
        let keys: [String]
        let candidates: [JSONValue?]
        let testsExistence: Bool
    }

    /// The fields of rule `index`'s condition, those whose existence it tests first (their
    /// absence is a value, so the search decides them before it evaluates anything).
    func ruleFields(_ index: Int) -> [SearchField] {
        var leaves: [Int: [ConditionProgram.Node]] = [:]
        var seen: Set<Int32> = [], stack = [program.ruleRoots[index]]
        while let node = stack.popLast() {
            guard seen.insert(node).inserted else { continue }
            let n = program.nodes[Int(node)]
            if n.kind == .leaf { leaves[Int(n.value), default: []].append(n) }
            stack += program.children[Int(n.first)..<Int(n.first + n.count)]
        }
        return leaves.keys.sorted().map { field in
            let info = table.fields[field]
            let tests = leaves[field]!
            let existence = tests.contains { $0.op == .exists }
            var candidates: [JSONValue?] = []
            func add(_ value: JSONValue?) { if !candidates.contains(where: { $0 == value }) { candidates.append(value) } }
            if !info.values.isEmpty {
                let all = info.values.map(JSONValue.string)
                if info.isArray {
                    add(.array([])); add(.array(all))
                    for v in all { add(.array([v])) }
                    for t in tests where [.anyOf, .allOf].contains(t.op) {
                        add(.array(info.values.indices.filter { t.operand >> UInt64($0) & 1 == 1 }.map { all[$0] }))
                        add(.array(info.values.indices.filter { t.operand >> UInt64($0) & 1 == 0 }.map { all[$0] }))
                    }
                } else {
                    for v in all { add(v) }
                }
            }
            for t in tests {
                switch t.op {
                case .boolEquals: add(.bool(true)); add(.bool(false))
                case .gt, .gte, .lt, .lte:
                    let bound = Double(bitPattern: t.operand)
                    add(.number(bound - 1)); add(.number(bound)); add(.number(bound + 1))
                case .general:
                    switch program.tests[Int(t.test)] {
                    case .equals(let v), .contains(let v): add(v)
                    case .isIn(let vs), .containsAny(let vs), .containsAll(let vs): for v in vs { add(v) }; add(.array(vs))
                    default: break
                    }
                    add(.string("\u{1}none of the tested values"))
                default: break
                }
            }
            if existence {
                if candidates.isEmpty { add(.bool(true)) }
                add(nil)
            }
            return SearchField(field: field, keys: info.keys, candidates: candidates, testsExistence: existence)
        }.sorted { $0.testsExistence && !$1.testsExistence }
    }

    /// Whether some values of `fields[next...]` added to `record` make rule `index` `target`;
    /// nil when the budget ran out first.
    private func reach(_ index: Int, _ target: Truth, _ fields: [SearchField], _ next: Int, _ record: JSONValue,
                       _ spent: inout Int, _ budget: Int) -> Bool? {
        // Existence is decided by absence: evaluate only once every such field has its value.
        if next >= fields.count || !fields[next].testsExistence {
            spent += 1
            guard spent <= budget else { return nil }
            let truth = self.truth(ofRule: index, in: record)
            if truth == target { return true }
            if truth != .unknown || next >= fields.count { return false }
        }
        for value in fields[next].candidates {
            var extended = record
            if let value { extended.set(path: fields[next].keys, value) }
            guard let reached = reach(index, target, fields, next + 1, extended, &spent, budget) else { return nil }
            if reached { return true }
        }
        return false
    }

    /// The three-valued truth of one rule's condition for a record.
    func truth(ofRule index: Int, in record: JSONValue) -> Truth {
        let facts = RecordFacts(record, table: table)
        return program.evaluate(facts) { Evaluation.truth($0.code(program.ruleRoots[index])) }
    }
}
