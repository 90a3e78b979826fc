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
/// flattened `ConditionProgram` through buffers (no reference counting on the way); definitions
/// are evaluated once per record and remembered. Lives inside `ConditionProgram.evaluate`.
struct Evaluation {
    let facts: UnsafeBufferPointer<Fact>
    let record: RecordFacts
    let program: ConditionProgram
    let nodes: UnsafeBufferPointer<ConditionProgram.Node>
    let children: UnsafeBufferPointer<Int32>
    /// A definition's value for this record, once evaluated.
    struct Remembered {
        var known = false
        var truth = Truth.unknown
        var missing = FieldSet()
    }
    let cache: UnsafeMutableBufferPointer<Remembered>

    mutating func truth(_ node: Int32) -> Truth {
        var ignored = FieldSet()
        return evaluate(node, missing: &ignored)
    }

    /// The truth value, in one pass; when it is unknown, `missing` gains the absent fields that
    /// leave it so (a bit set: collecting them costs a few instructions).
    mutating func evaluate(_ index: Int32, missing: inout FieldSet) -> Truth {
        let node = nodes[Int(index)]
        switch node.kind {
        case .leaf:
            return leaf(node, missing: &missing)
        case .all:
            var result = Truth.yes
            var unknownFields = FieldSet()
            for c in node.first..<node.first + node.count {
                switch child(children[Int(c)], missing: &unknownFields) {
                case .no: return .no
                case .unknown: result = .unknown
                case .yes: break
                }
            }
            if result == .unknown { missing.formUnion(unknownFields) }
            return result
        case .any:
            var result = Truth.no
            var unknownFields = FieldSet()
            for c in node.first..<node.first + node.count {
                switch child(children[Int(c)], missing: &unknownFields) {
                case .yes: return .yes
                case .unknown: result = .unknown
                case .no: break
                }
            }
            if result == .unknown { missing.formUnion(unknownFields) }
            return result
        case .not:
            switch evaluate(children[Int(node.first)], missing: &missing) {
            case .yes: return .no
            case .no: return .yes
            case .unknown: return .unknown
            }
        case .atLeast:
            var yes: Int32 = 0, unknown: Int32 = 0
            var unknownFields = FieldSet()
            for c in node.first..<node.first + node.count {
                switch child(children[Int(c)], missing: &unknownFields) {
                case .yes: yes += 1
                case .unknown: unknown += 1
                case .no: break
                }
            }
            if yes >= node.value { return .yes }
            if yes + unknown < node.value { return .no }
            missing.formUnion(unknownFields)
            return .unknown
        case .ref:
            let i = Int(node.value)
            if cache[i].known {
                if cache[i].truth == .unknown { missing.formUnion(cache[i].missing) }
                return cache[i].truth
            }
            var fields = FieldSet()
            let value = evaluate(program.definitionRoots[i], missing: &fields)
            cache[i] = Remembered(known: true, truth: value, missing: fields)
            if value == .unknown { missing.formUnion(fields) }
            return value
        }
    }

    /// A child of a composite: leaves, most children, are tested here without a call.
    @inline(__always)
    mutating func child(_ index: Int32, missing: inout FieldSet) -> Truth {
        let node = nodes[Int(index)]
        return node.kind == .leaf ? leaf(node, missing: &missing) : evaluate(index, missing: &missing)
    }

    @inline(__always)
    func leaf(_ node: ConditionProgram.Node, missing: inout FieldSet) -> Truth {
        let field = Int(node.value)
        let value = node.op == .general ? Self.apply(program.tests[Int(node.test)], field: field, facts[field], record)
                                        : Self.apply(node.op, node.operand, facts[field])
        if value == .unknown { missing.insert(field) }
        return value
    }

    /// The common tests, on plain values.
    @inline(__always)
    static func apply(_ op: ConditionProgram.Op, _ operand: UInt64, _ fact: Fact) -> Truth {
        if op == .exists {
            if case .absent = fact { return operand == 1 ? .no : .yes }
            return operand == 1 ? .yes : .no
        }
        switch (op, fact) {
        case (_, .absent): return .unknown
        case (.symbolIn, .symbol(let i)): return operand & (1 << UInt64(i)) != 0 ? .yes : .no
        case (.anyOf, .symbols(let set)): return operand & set != 0 ? .yes : .no
        case (.allOf, .symbols(let set)): return operand & set == operand ? .yes : .no
        case (.boolEquals, .bool(let v)): return (operand == 1) == v ? .yes : .no
        case (.gt, .number(let n)): return n > Double(bitPattern: operand) ? .yes : .no
        case (.gte, .number(let n)): return n >= Double(bitPattern: operand) ? .yes : .no
        case (.lt, .number(let n)): return n < Double(bitPattern: operand) ? .yes : .no
        case (.lte, .number(let n)): return n <= Double(bitPattern: operand) ? .yes : .no
        default: return .no
        }
    }

    /// The facts that decide a condition's value: for a true `all`, every part's; for a true
    /// `any`, the first true part's; for a false one, the reverse. Run for fired rules only.
    mutating func decidingFacts(_ index: Int32, into fields: inout FieldSet) {
        let node = program.nodes[Int(index)]
        let value = truth(index)
        let parts = (node.first..<node.first + node.count).map { program.children[Int($0)] }
        switch node.kind {
        case .leaf:
            if value != .unknown { fields.insert(Int(node.value)) }
        case .not: decidingFacts(parts[0], into: &fields)
        case .ref: decidingFacts(program.definitionRoots[Int(node.value)], into: &fields)
        case .all:
            if value == .yes { for part in parts { decidingFacts(part, into: &fields) } }
            if value == .no, let first = parts.first(where: { truth($0) == .no }) { decidingFacts(first, into: &fields) }
        case .any:
            if value == .yes, let first = parts.first(where: { truth($0) == .yes }) { decidingFacts(first, into: &fields) }
            if value == .no { for part in parts { decidingFacts(part, into: &fields) } }
        case .atLeast:
            if value != .unknown { for part in parts where truth(part) == value { decidingFacts(part, into: &fields) } }
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
