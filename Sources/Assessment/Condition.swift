/// A compiled rule condition over the facts of a deployment record, evaluated in three-valued
/// logic: an absent field is unknown, never false.
///
/// Pack syntax: `{"all": [...]}`, `{"any": [...]}`, `{"not": c}`, `{"at_least": n, "of": [...]}`,
/// `{"ref": "definition"}`, and leaves naming a `field` (dotted path) with one of `equals`, `in`,
/// `contains`, `contains_any`, `contains_all`, `exists`, `gt`, `gte`, `lt`, `lte`.
///
/// Compiled, a leaf names its field by number and tests enum values as bits, so evaluating a rule
/// compares integers; a `ref` is evaluated once per record and remembered.
indirect enum Condition: Sendable {
    case all([Condition])
    case any([Condition])
    case not(Condition)
    /// True when at least `n` parts are true; false when fewer than `n` can still be.
    case atLeast(Int, [Condition])
    case leaf(Int, Test)
    /// A pack definition, by its number in the pack.
    case ref(Int)

    enum Test: Sendable {
        /// An enum field's value is one of these (bit i: the field's i-th value).
        case symbolIn(UInt64)
        /// An array-of-enum field holds at least one of these.
        case anyOf(UInt64)
        /// An array-of-enum field holds all of these.
        case allOf(UInt64)
        case boolEquals(Bool)
        case equals(JSONValue)
        case isIn([JSONValue])
        case contains(JSONValue)
        case containsAny([JSONValue])
        case containsAll([JSONValue])
        case exists(Bool)
        case compare(Comparison, Double)
    }

    enum Comparison: String, Sendable, CaseIterable { case gt, gte, lt, lte }
}

/// Evaluates the conditions of one pack against one record's facts, walking the pack's
/// flattened `ConditionProgram` through buffers (no reference counting on the way). Lives inside
/// `ConditionProgram.evaluate`.
///
/// Truth values travel as two-bit codes, Kleene's logic as an interval: bit 1 "can be true",
/// bit 0 "is true" — `no` 0b00, `unknown` 0b10, `yes` 0b11 — so `all` is the bitwise AND of its
/// parts and `any` their OR. Every node is evaluated once — the leaves, then the composites in
/// program order (parts and definitions come before what uses them) — into a table of codes;
/// which fields decided a fired rule, or leave an undecided one open, is read from that table
/// afterwards for those rules alone.
struct Evaluation {
    static let no: UInt8 = 0b00, unknown: UInt8 = 0b10, yes: UInt8 = 0b11

    let facts: UnsafeBufferPointer<Fact>
    let record: UnsafePointer<RecordFacts>
    unowned(unsafe) let program: ConditionProgram
    let nodes: UnsafeBufferPointer<ConditionProgram.Node>
    let leafTests: UnsafeBufferPointer<ConditionProgram.LeafTest>
    let composites: UnsafeBufferPointer<Int32>
    let children: UnsafeBufferPointer<Int32>
    /// Every node's code for this record, filled by `run`.
    let codes: UnsafeMutableBufferPointer<UInt8>
    /// An unknown definition's missing fields, once worked out (many rules share definitions).
    let definitionMissing: UnsafeMutableBufferPointer<(known: Bool, fields: FieldSet)>

    static func truth(_ code: UInt8) -> Truth { code == yes ? .yes : code == no ? .no : .unknown }

    @inline(__always)
    func code(_ node: Int32) -> UInt8 { codes[Int(node)] }

    /// Evaluates every node: the leaves a kind of test at a time (tight loops, branches a
    /// processor predicts), then the composites in program order (parts come first). No
    /// short-circuit: a pass over ~180 plain values with no calls costs less than jumping around
    /// a tree, and it leaves every part's value in the table for the findings.
    func run() {
        let ranges = program.leafRanges
        typealias Op = ConditionProgram.Op
        each(ranges[Int(Op.symbolIn.rawValue)]) { fact, mask in
            if case .symbol(let i) = fact { return mask >> UInt64(i) & 1 != 0 ? Self.yes : Self.no }
            if case .absent = fact { return Self.unknown }
            return Self.no
        }
        each(ranges[Int(Op.anyOf.rawValue)]) { fact, mask in
            if case .symbols(let set) = fact { return set & mask != 0 ? Self.yes : Self.no }
            if case .absent = fact { return Self.unknown }
            return Self.no
        }
        each(ranges[Int(Op.allOf.rawValue)]) { fact, mask in
            if case .symbols(let set) = fact { return set & mask == mask ? Self.yes : Self.no }
            if case .absent = fact { return Self.unknown }
            return Self.no
        }
        each(ranges[Int(Op.boolEquals.rawValue)]) { fact, expected in
            if case .bool(let b) = fact { return (expected == 1) == b ? Self.yes : Self.no }
            if case .absent = fact { return Self.unknown }
            return Self.no
        }
        each(ranges[Int(Op.exists.rawValue)]) { fact, expected in
            if case .absent = fact { return expected == 1 ? Self.no : Self.yes }
            return expected == 1 ? Self.yes : Self.no
        }
        each(ranges[Int(Op.gt.rawValue)]) { fact, bound in Self.apply(.gt, bound, fact) }
        each(ranges[Int(Op.gte.rawValue)]) { fact, bound in Self.apply(.gte, bound, fact) }
        each(ranges[Int(Op.lt.rawValue)]) { fact, bound in Self.apply(.lt, bound, fact) }
        each(ranges[Int(Op.lte.rawValue)]) { fact, bound in Self.apply(.lte, bound, fact) }
        for i in ranges[Int(Op.general.rawValue)] {
            let leaf = leafTests[i]
            let field = Int(leaf.field)
            codes[Int(leaf.node)] = Self.code(Self.apply(program.tests[Int(leaf.operand)], field: field, facts[field], record.pointee))
        }
        for index in composites {
            let node = nodes[Int(index)]
            let value: UInt8
            switch node.kind {
            case .leaf:
                continue
            case .all:
                var result = Self.yes
                for c in Int(node.first)..<Int(node.first + node.count) { result &= codes[Int(children[c])] }
                value = result
            case .any:
                var result = Self.no
                for c in Int(node.first)..<Int(node.first + node.count) { result |= codes[Int(children[c])] }
                value = result
            case .not:
                value = Self.negate(codes[Int(children[Int(node.first)])])
            case .atLeast:
                var yes: Int32 = 0, possible: Int32 = 0
                for c in Int(node.first)..<Int(node.first + node.count) {
                    let part = codes[Int(children[c])]
                    yes &+= Int32(part & 1)
                    possible &+= Int32(part >> 1)
                }
                value = yes >= node.value ? Self.yes : possible < node.value ? Self.no : Self.unknown
            }
            codes[Int(index)] = value
        }
    }

    /// Tests the leaves in `range` with `test(fact, operand)`.
    @inline(__always)
    private func each(_ range: Range<Int>, _ test: (Fact, UInt64) -> UInt8) {
        for i in range {
            let leaf = leafTests[i]
            codes[Int(leaf.node)] = test(facts[Int(leaf.field)], leaf.operand)
        }
    }

    @inline(__always)
    static func negate(_ code: UInt8) -> UInt8 { (~code & 0b10) >> 1 | (~code & 0b01) << 1 }

    @inline(__always)
    static func code(_ truth: Truth) -> UInt8 {
        switch truth {
        case .yes: yes
        case .no: no
        case .unknown: unknown
        }
    }

    /// The common tests, on plain values.
    @inline(__always)
    static func apply(_ op: ConditionProgram.Op, _ operand: UInt64, _ fact: Fact) -> UInt8 {
        if op == .exists {
            if case .absent = fact { return operand == 1 ? no : yes }
            return operand == 1 ? yes : no
        }
        switch (op, fact) {
        case (_, .absent): return unknown
        case (.symbolIn, .symbol(let i)): return operand & (1 << UInt64(i)) != 0 ? yes : no
        case (.anyOf, .symbols(let set)): return operand & set != 0 ? yes : no
        case (.allOf, .symbols(let set)): return operand & set == operand ? yes : no
        case (.boolEquals, .bool(let v)): return (operand == 1) == v ? yes : no
        case (.gt, .number(let n)): return n > Double(bitPattern: operand) ? yes : no
        case (.gte, .number(let n)): return n >= Double(bitPattern: operand) ? yes : no
        case (.lt, .number(let n)): return n < Double(bitPattern: operand) ? yes : no
        case (.lte, .number(let n)): return n <= Double(bitPattern: operand) ? yes : no
        default: return no
        }
    }

    /// The absent fields that leave an unknown condition unknown: a leaf's own field, and for a
    /// composite those of its unknown parts (a known part cannot be what leaves it open).
    func missing(_ index: Int32, into fields: inout FieldSet) {
        let node = nodes[Int(index)]
        switch node.kind {
        case .leaf:
            fields.insert(Int(node.value))
        case .not:
            missing(children[Int(node.first)], into: &fields)
        case .all, .any, .atLeast:
            let definition = Int(node.test)
            if definition >= 0, definitionMissing[definition].known {
                fields.formUnion(definitionMissing[definition].fields)
                return
            }
            var own = FieldSet()
            for c in node.first..<node.first + node.count where code(children[Int(c)]) == Self.unknown {
                let part = nodes[Int(children[Int(c)])]
                // Leaves, most parts, without a call.
                if part.kind == .leaf { own.insert(Int(part.value)) } else { missing(children[Int(c)], into: &own) }
            }
            if definition >= 0 { definitionMissing[definition] = (true, own) }
            fields.formUnion(own)
        }
    }

    /// The facts that decide a condition's value: for a true `all`, every part's; for a true
    /// `any`, the first true part's; for a false one, the reverse. Run for fired rules only.
    func decidingFacts(_ index: Int32, into fields: inout FieldSet) {
        let node = nodes[Int(index)]
        let value = code(index)
        let parts = node.first..<node.first + node.count
        switch node.kind {
        case .leaf:
            if value != Self.unknown { fields.insert(Int(node.value)) }
        case .not: decidingFacts(children[Int(node.first)], into: &fields)
        case .all:
            if value == Self.yes { for c in parts { decidingFacts(children[Int(c)], into: &fields) } }
            if value == Self.no, let c = parts.first(where: { code(children[Int($0)]) == Self.no }) {
                decidingFacts(children[Int(c)], into: &fields)
            }
        case .any:
            if value == Self.yes, let c = parts.first(where: { code(children[Int($0)]) == Self.yes }) {
                decidingFacts(children[Int(c)], into: &fields)
            }
            if value == Self.no { for c in parts { decidingFacts(children[Int(c)], into: &fields) } }
        case .atLeast:
            if value != Self.unknown {
                for c in parts where code(children[Int(c)]) == value { decidingFacts(children[Int(c)], into: &fields) }
            }
        }
    }

    /// For every node, the absent fields that, answered alone, can make it true (`yes`) and those
    /// that can make it false (`no`); a decided node has every field in the set of its value and
    /// none in the other. A field's tests are taken as independent of each other (answering it
    /// may be able to make two tests of it true only one at a time): the sets say what an answer
    /// can do, not what one answer does. Composites in program order, parts first.
    func forcing(yes: UnsafeMutableBufferPointer<FieldSet>, no: UnsafeMutableBufferPointer<FieldSet>) {
        for i in nodes.indices {
            let value = codes[i]
            if value == Self.yes { yes[i] = .all; no[i] = FieldSet(); continue }
            if value == Self.no { yes[i] = FieldSet(); no[i] = .all; continue }
            let node = nodes[i]
            let parts = Int(node.first)..<Int(node.first + node.count)
            switch node.kind {
            case .leaf:
                var field = FieldSet()
                field.insert(Int(node.value))
                yes[i] = field; no[i] = field
            case .not:
                let part = Int(children[Int(node.first)])
                yes[i] = no[part]; no[i] = yes[part]
            case .all:
                var y = FieldSet.all, n = FieldSet()
                for c in parts { let part = Int(children[c]); y = y.intersection(yes[part]); n.formUnion(no[part]) }
                yes[i] = y; no[i] = n
            case .any:
                var y = FieldSet(), n = FieldSet.all
                for c in parts { let part = Int(children[c]); y.formUnion(yes[part]); n = n.intersection(no[part]) }
                yes[i] = y; no[i] = n
            case .atLeast:
                // True when at least n parts are: a field that can make n parts true. False when
                // fewer than n can be: a field that can make more than (parts − n) of them false.
                let need = Int(node.value), total = Int(node.count)
                func reach(_ sets: UnsafeMutableBufferPointer<FieldSet>, _ threshold: Int) -> FieldSet {
                    var always = 0, candidates = FieldSet()
                    for c in parts {
                        let set = sets[Int(children[c])]
                        if set == .all { always += 1 } else { candidates.formUnion(set) }
                    }
                    var out = FieldSet()
                    candidates.forEach { field in
                        var k = always
                        for c in parts where sets[Int(children[c])] != .all && sets[Int(children[c])].contains(field) { k += 1 }
                        if k >= threshold { out.insert(field) }
                    }
                    return out
                }
                yes[i] = reach(yes, need)
                no[i] = reach(no, total - need + 1)
            }
        }
    }

    /// How much of each node's condition the known facts already satisfy, from 0 to 1, in
    /// program order (parts first): a decided node 1 or 0; an unknown leaf 0; `all` the mean of
    /// its parts but its open exceptions (an unknown `not`: "unless …", which nobody has shown to
    /// apply or not), `any` the largest, `at_least n` the mean of its n largest; `not` one minus
    /// its part's.
    func satisfactions(into out: UnsafeMutableBufferPointer<Double>) {
        for i in nodes.indices {
            let value = codes[i]
            if value == Self.yes { out[i] = 1; continue }
            if value == Self.no { out[i] = 0; continue }
            let node = nodes[i]
            let parts = Int(node.first)..<Int(node.first + node.count)
            switch node.kind {
            case .leaf: out[i] = 0
            case .not: out[i] = 1 - out[Int(children[Int(node.first)])]
            case .all:
                var sum = 0.0, counted = 0
                for c in parts {
                    let part = Int(children[c])
                    if nodes[part].kind == .not && codes[part] == Self.unknown { continue }
                    sum += out[part]; counted += 1
                }
                out[i] = counted == 0 ? 0 : sum / Double(counted)
            case .any:
                var best = 0.0
                for c in parts { best = max(best, out[Int(children[c])]) }
                out[i] = best
            case .atLeast:
                // The n largest, by selection (parts are few).
                let need = Int(node.value)
                var taken: UInt64 = 0, sum = 0.0
                for _ in 0..<need {
                    var best = -1.0, at = -1
                    for (k, c) in parts.enumerated() where k < 64 && taken >> UInt64(k) & 1 == 0 {
                        let v = out[Int(children[c])]
                        if v > best { best = v; at = k }
                    }
                    guard at >= 0 else { break }
                    taken |= 1 << UInt64(at)
                    sum += best
                }
                out[i] = sum / Double(need)
            }
        }
    }

    /// Any test, including those on free text or mixed values, which compare the value as submitted.
    static func apply(_ test: Condition.Test, field: Int, _ fact: Fact, _ facts: RecordFacts) -> Truth {
        if case .exists(let expected) = test {
            if case .absent = fact { return expected ? .no : .yes }
            return expected ? .yes : .no
        }
        switch (test, fact) {
        case (_, .absent): return .unknown
        case (.symbolIn(let mask), .symbol(let i)): return mask & (1 << UInt64(i)) != 0 ? .yes : .no
        case (.anyOf(let mask), .symbols(let set)): return mask & set != 0 ? .yes : .no
        case (.allOf(let mask), .symbols(let set)): return mask & set == mask ? .yes : .no
        case (.boolEquals(let b), .bool(let v)): return b == v ? .yes : .no
        case (.compare(let op, let bound), .number(let n)):
            switch op {
            case .gt: return n > bound ? .yes : .no
            case .gte: return n >= bound ? .yes : .no
            case .lt: return n < bound ? .yes : .no
            case .lte: return n <= bound ? .yes : .no
            }
        default: break
        }
        // Tests on free text or mixed values compare the value as submitted.
        let value = facts.value(of: field)
        switch test {
        case .equals(let expected): return value == expected ? .yes : .no
        case .isIn(let options): return value.map { options.contains($0) } == true ? .yes : .no
        case .contains(let element):
            guard case .array(let elements)? = value else { return value == element ? .yes : .no }
            return elements.contains(element) ? .yes : .no
        case .containsAny(let options):
            guard case .array(let elements)? = value else { return value.map { options.contains($0) } == true ? .yes : .no }
            return elements.contains { options.contains($0) } ? .yes : .no
        case .containsAll(let required):
            guard case .array(let elements)? = value else { return .no }
            return required.allSatisfy { elements.contains($0) } ? .yes : .no
        default:
            // A fact of another type than the test expects (the schema prevents it): no match.
            return .no
        }
    }
}
