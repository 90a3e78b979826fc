/// A `RecordSchema` flattened into arrays of plain values for the check every record passes at
/// intake: it answers only whether a record is valid, walking the record through buffers with
/// no paths, no hashing and no reference counting on the schema side. When it says no (or meets
/// something it does not handle), `RecordSchema.validate` runs and says where and why; it never
/// accepts what `validate` would refuse (the tests hold the two to that on mutated records).
final class SchemaProgram: Sendable {
    struct Node: Sendable {
        /// `RecordSchema.kindBit`s allowed, when the schema names types.
        var checksType = false
        var typeMask: UInt8 = 0
        /// Allowed values: `enumStrings[enumStart ..< enumStart + enumCount]` when all are
        /// strings; `enumCount == -1` for none; `needsTree` when some are not strings.
        var enumStart: Int32 = 0
        var enumCount: Int32 = -1
        var minimum = -Double.infinity
        var maximum = Double.infinity
        /// Strings: whether their length in characters must be counted.
        var countsCharacters = false
        var minLength = 0
        var maxLength = Int.max
        var maxItems = Int.max
        var items: Int32 = -1
        /// Properties: `keys/nodes[childStart ..< childStart + childCount]`, in byte order.
        var childStart: Int32 = 0
        var childCount: Int32 = 0
        /// Bit i: property `childStart + i` is required.
        var required: UInt64 = 0
        var additionalProperties = true
        /// Something the fast check leaves to the tree: more than 64 properties, a required
        /// name that is no property, an enum of other than strings.
        var needsTree = false
    }

    static let deployment = SchemaProgram(.deployment)

    let nodes: [Node]
    let keys: [String]
    let children: [Int32]
    let enumStrings: [String]

    init(_ schema: RecordSchema) {
        var nodes: [Node] = []
        var keys: [String] = [], children: [Int32] = [], enumStrings: [String] = []
        func emit(_ schema: RecordSchema) -> Int32 {
            let index = nodes.count
            nodes.append(Node())
            var node = Node()
            node.checksType = schema.typeMask != nil
            node.typeMask = schema.typeMask ?? 0
            if let values = schema.enumValues {
                let strings = values.compactMap(\.stringValue)
                if strings.count == values.count {
                    node.enumStart = Int32(enumStrings.count)
                    node.enumCount = Int32(strings.count)
                    enumStrings.append(contentsOf: strings)
                } else {
                    node.needsTree = true
                }
            }
            node.minimum = schema.minimum ?? -.infinity
            node.maximum = schema.maximum ?? .infinity
            node.countsCharacters = schema.minLength != nil || schema.maxLength != nil
            node.minLength = schema.minLength ?? 0
            node.maxLength = schema.maxLength ?? .max
            node.maxItems = schema.maxItems ?? .max
            if let items = schema.items { node.items = emit(items) }
            let names = schema.propertyOrder.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            if names.count > 64 || !schema.required.allSatisfy({ schema.properties[$0] != nil }) { node.needsTree = true }
            let sub = names.map { emit(schema.properties[$0]!) }
            node.childStart = Int32(keys.count)
            node.childCount = Int32(names.count)
            for (i, name) in names.enumerated() {
                keys.append(name)
                children.append(sub[i])
                if i < 64, schema.required.contains(name) { node.required |= 1 << UInt64(i) }
            }
            node.additionalProperties = schema.additionalProperties
            nodes[index] = node
            return Int32(index)
        }
        _ = emit(schema)
        self.nodes = nodes
        self.keys = keys
        self.children = children
        self.enumStrings = enumStrings
    }

    /// True when `value` is certainly valid; false when `RecordSchema.validate` must look.
    func accepts(_ value: JSONValue) -> Bool {
        nodes.withUnsafeBufferPointer { nodes in
            keys.withUnsafeBufferPointer { keys in
                children.withUnsafeBufferPointer { children in
                    enumStrings.withUnsafeBufferPointer { enumStrings in
                        Walk(nodes: nodes, keys: keys, children: children, enumStrings: enumStrings).accepts(value, 0)
                    }
                }
            }
        }
    }

    private struct Walk {
        let nodes: UnsafeBufferPointer<Node>
        let keys: UnsafeBufferPointer<String>
        let children: UnsafeBufferPointer<Int32>
        let enumStrings: UnsafeBufferPointer<String>

        func accepts(_ value: borrowing JSONValue, _ index: Int32) -> Bool {
            let node = nodes[Int(index)]
            if node.needsTree { return false }
            if node.checksType, node.typeMask & RecordSchema.kindBit(value) == 0 { return false }
            switch copy value {
            case .string(let s):
                if node.enumCount >= 0 {
                    let first = Int(node.enumStart)
                    guard (first..<first + Int(node.enumCount)).contains(where: { enumStrings[$0] == s }) else { return false }
                }
                if node.countsCharacters, node.minLength > 0 || s.utf8.count > node.maxLength {
                    let count = s.unicodeScalars.count
                    if count < node.minLength || count > node.maxLength { return false }
                }
                return true
            case .number(let n):
                return node.enumCount < 0 && n >= node.minimum && n <= node.maximum
            case .array(let elements):
                if node.enumCount >= 0 || elements.count > node.maxItems { return false }
                guard node.items >= 0 else { return true }
                return elements.withUnsafeBufferPointer { elements in
                    for e in elements.indices where !accepts(elements[e], node.items) { return false }
                    return true
                }
            case .object(let members):
                if node.enumCount >= 0 { return false }
                return members.withUnsafeBufferPointer { members in
                    let first = Int(node.childStart), end = first + Int(node.childCount)
                    var seen: UInt64 = 0
                    // Looked for from just after the last key found, wrapping: canonical records
                    // find each key at the first try.
                    var next = first
                    for m in members.indices {
                        var found = -1
                        if first < end {
                            var c = next
                            repeat {
                                if keys[c] == members[m].key { found = c; break }
                                c = c + 1 == end ? first : c + 1
                            } while c != next
                        }
                        if found < 0 {
                            if !node.additionalProperties { return false }
                            continue
                        }
                        next = found + 1 == end ? first : found + 1
                        if found - first < 64 { seen |= 1 << UInt64(found - first) }
                        if !accepts(members[m].value, children[found]) { return false }
                    }
                    return seen & node.required == node.required
                }
            case .null, .bool:
                return node.enumCount < 0
            }
        }
    }
}
