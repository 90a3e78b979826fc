/// A pack's conditions flattened into arrays of plain values, so that evaluating a record walks
/// indices and touches no reference counts (an indirect enum tree retains and releases at every
/// node, which dominated the profile).
final class ConditionProgram: Sendable {
    enum Kind: UInt8, Sendable { case leaf, all, any, not, atLeast, ref }

    /// How a leaf tests its fact without looking at `tests`: the common tests on enum, boolean
    /// and number facts, with their operand in `Node.operand`. `general` reads `tests`.
    enum Op: UInt8, Sendable { case general, symbolIn, anyOf, allOf, boolEquals, exists, gt, gte, lt, lte }

    struct Node: Sendable {
        let kind: Kind
        /// leaf: field number; atLeast: n; ref: definition number.
        let value: Int32
        /// Children: `children[first ..< first + count]`.
        let first: Int32
        let count: Int32
        /// leaf: index into `tests`.
        let test: Int32
        var op: Op = .general
        /// symbolIn/anyOf/allOf: the mask; boolEquals/exists: 0 or 1; comparisons: the bound's bits.
        var operand: UInt64 = 0
    }

    let nodes: [Node]
    let children: [Int32]
    let tests: [Condition.Test]
    /// Root node of each definition and of each rule.
    let definitionRoots: [Int32]
    let ruleRoots: [Int32]

    init(definitions: [Condition], rules: [Condition]) {
        var nodes: [Node] = []
        var children: [Int32] = []
        var tests: [Condition.Test] = []
        func emit(_ condition: Condition) -> Int32 {
            switch condition {
            case .leaf(let field, let test):
                tests.append(test)
                var node = Node(kind: .leaf, value: Int32(field), first: 0, count: 0, test: Int32(tests.count - 1))
                switch test {
                case .symbolIn(let mask): node.op = .symbolIn; node.operand = mask
                case .anyOf(let mask): node.op = .anyOf; node.operand = mask
                case .allOf(let mask): node.op = .allOf; node.operand = mask
                case .boolEquals(let b): node.op = .boolEquals; node.operand = b ? 1 : 0
                case .exists(let b): node.op = .exists; node.operand = b ? 1 : 0
                case .compare(let comparison, let bound):
                    node.op = switch comparison { case .gt: .gt; case .gte: .gte; case .lt: .lt; case .lte: .lte }
                    node.operand = bound.bitPattern
                default: break
                }
                nodes.append(node)
            case .ref(let i):
                nodes.append(Node(kind: .ref, value: Int32(i), first: 0, count: 0, test: 0))
            case .not(let inner):
                let child = emit(inner)
                children.append(child)
                nodes.append(Node(kind: .not, value: 0, first: Int32(children.count - 1), count: 1, test: 0))
            case .all(let parts), .any(let parts), .atLeast(_, let parts):
                let ids = parts.map(emit)
                let first = Int32(children.count)
                children.append(contentsOf: ids)
                let kind: Kind
                var value: Int32 = 0
                switch condition {
                case .all: kind = .all
                case .any: kind = .any
                case .atLeast(let n, _): kind = .atLeast; value = Int32(n)
                default: fatalError("unreachable")
                }
                nodes.append(Node(kind: kind, value: value, first: first, count: Int32(ids.count), test: 0))
            }
            return Int32(nodes.count - 1)
        }
        definitionRoots = definitions.map(emit)
        ruleRoots = rules.map(emit)
        self.nodes = nodes
        self.children = children
        self.tests = tests
        // `Evaluation.run` evaluates nodes in index order, so every node's parts and definitions
        // must come before it: parts are emitted first, and the compiler numbers a definition only
        // after those it refers to.
        for (index, node) in nodes.enumerated() {
            let before = node.kind == .ref ? [definitionRoots[Int(node.value)]]
                                           : Array(children[Int(node.first)..<Int(node.first + node.count)])
            precondition(before.allSatisfy { $0 < index }, "condition node \(index) comes before a part it needs")
        }
    }

    /// Runs `body` with an evaluation of this program over `facts`, its state on the stack.
    func evaluate<T>(_ facts: borrowing RecordFacts, _ body: (inout Evaluation) -> T) -> T {
        withUnsafePointer(to: facts) { record in
            record.pointee.facts.withUnsafeBufferPointer { factBuffer in
                nodes.withUnsafeBufferPointer { nodeBuffer in
                    children.withUnsafeBufferPointer { childBuffer in
                        definitionRoots.withUnsafeBufferPointer { roots in
                            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: nodes.count) { codes in
                                withUnsafeTemporaryAllocation(of: (known: Bool, fields: FieldSet).self, capacity: definitionRoots.count) { missing in
                                    for i in missing.indices { missing[i].known = false }
                                    var evaluation = Evaluation(facts: factBuffer, record: record, program: self, nodes: nodeBuffer,
                                                                children: childBuffer, definitionRoots: roots, codes: codes,
                                                                definitionMissing: missing)
                                    evaluation.run()
                                    return body(&evaluation)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
