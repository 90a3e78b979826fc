/// A pack's conditions flattened into arrays of plain values, so that evaluating a record walks
/// indices and touches no reference counts (an indirect enum tree retains and releases at every
/// node, which dominated the profile).
final class ConditionProgram: Sendable {
    enum Kind: UInt8, Sendable { case leaf, all, any, not, atLeast }

    /// How a leaf tests its fact without looking at `tests`: the common tests on enum, boolean
    /// and number facts, with their operand in `Node.operand`. `general` reads `tests`.
    enum Op: UInt8, Sendable { case general, symbolIn, anyOf, allOf, boolEquals, exists, gt, gte, lt, lte }

    struct Node: Sendable {
        let kind: Kind
        /// leaf: field number; atLeast: n.
        let value: Int32
        /// Children: `children[first ..< first + count]`.
        let first: Int32
        let count: Int32
        /// leaf: index into `tests`. Composite: the number of the definition whose root it is
        /// (its missing fields are remembered per record, as many rules share it), or -1.
        var test: Int32
        var op: Op = .general
        /// symbolIn/anyOf/allOf: the mask; boolEquals/exists: 0 or 1; comparisons: the bound's bits.
        var operand: UInt64 = 0
    }

    /// One leaf as `Evaluation.run` tests it: `operand` as in `Node` (for `general`, the index
    /// into `tests`).
    struct LeafTest: Sendable {
        let node: Int32
        let field: Int32
        let operand: UInt64
    }

    let nodes: [Node]
    /// Every leaf, grouped by test (`leafRanges[op.rawValue]`), so that each group is a tight
    /// loop with one kind of test; then the composites, in program order.
    let leafTests: [LeafTest]
    let leafRanges: [Range<Int>]
    let composites: [Int32]
    let children: [Int32]
    let tests: [Condition.Test]
    /// Root node of each definition and of each rule. A reference to a definition is no node
    /// of its own: its parent points at the definition's root.
    let definitionRoots: [Int32]
    let ruleRoots: [Int32]

    init(definitions: [Condition], rules: [Condition]) {
        var nodes: [Node] = []
        var children: [Int32] = []
        var tests: [Condition.Test] = []
        var roots: [Int32] = []
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
                return roots[i]
            case .not(let inner):
                let child = emit(inner)
                children.append(child)
                nodes.append(Node(kind: .not, value: 0, first: Int32(children.count - 1), count: 1, test: -1))
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
                nodes.append(Node(kind: kind, value: value, first: first, count: Int32(ids.count), test: -1))
            }
            return Int32(nodes.count - 1)
        }
        // The compiler numbers a definition after those it refers to, so each reference finds
        // its definition's root already emitted.
        for (number, definition) in definitions.enumerated() {
            let root = emit(definition)
            if nodes[Int(root)].kind != .leaf && nodes[Int(root)].test < 0 { nodes[Int(root)].test = Int32(number) }
            roots.append(root)
        }
        definitionRoots = roots
        ruleRoots = rules.map(emit)
        self.nodes = nodes
        self.children = children
        self.tests = tests
        // `Evaluation.run` evaluates nodes in index order, so every node's parts and definitions
        // must come before it: parts are emitted first, and the compiler numbers a definition only
        // after those it refers to.
        for (index, node) in nodes.enumerated() {
            let parts = children[Int(node.first)..<Int(node.first + node.count)]
            precondition(parts.allSatisfy { $0 < index }, "condition node \(index) comes before a part it needs")
        }
        var leafTests: [LeafTest] = [], leafRanges: [Range<Int>] = []
        for op in 0...Op.lte.rawValue {
            let start = leafTests.count
            for (index, node) in nodes.enumerated() where node.kind == .leaf && node.op.rawValue == op {
                leafTests.append(LeafTest(node: Int32(index), field: node.value,
                                          operand: node.op == .general ? UInt64(node.test) : node.operand))
            }
            leafRanges.append(start..<leafTests.count)
        }
        self.leafTests = leafTests
        self.leafRanges = leafRanges
        composites = nodes.indices.filter { nodes[$0].kind != .leaf }.map(Int32.init)
    }

    /// Runs `body` with an evaluation of this program over `facts`, its state on the stack.
    func evaluate<T>(_ facts: borrowing RecordFacts, _ body: (inout Evaluation) -> T) -> T {
        withUnsafePointer(to: facts) { record in
            record.pointee.facts.withUnsafeBufferPointer { factBuffer in
                nodes.withUnsafeBufferPointer { nodeBuffer in
                  leafTests.withUnsafeBufferPointer { leafBuffer in
                   composites.withUnsafeBufferPointer { compositeBuffer in
                    children.withUnsafeBufferPointer { childBuffer in
                        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: nodes.count) { codes in
                            withUnsafeTemporaryAllocation(of: (known: Bool, fields: FieldSet).self, capacity: definitionRoots.count) { missing in
                                for i in missing.indices { missing[i].known = false }
                                var evaluation = Evaluation(facts: factBuffer, record: record, program: self, nodes: nodeBuffer,
                                                            leafTests: leafBuffer, composites: compositeBuffer,
                                                            children: childBuffer, codes: codes, definitionMissing: missing)
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
}
