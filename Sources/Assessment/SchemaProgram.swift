#if canImport(Glibc)
import Glibc
#endif

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
    /// `keys` and `enumStrings` as UTF-8, for `Scanner`; `keysAreASCII`/`enumsAreASCII` when
    /// all are (then byte equality is String equality).
    let keyBytes: ByteTable
    let enumBytes: ByteTable
    let keysAreASCII: Bool
    let enumsAreASCII: Bool

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
        keyBytes = ByteTable(keys.map { Array($0.utf8) })
        enumBytes = ByteTable(enumStrings.map { Array($0.utf8) })
        keysAreASCII = keys.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
        enumsAreASCII = enumStrings.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
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

extension SchemaProgram {
    /// Checks a record's JSON text against the schema in one pass over its bytes, building no
    /// tree: true when the text is certainly a valid record (well-formed JSON, no duplicate
    /// keys, within `limits`, valid against the schema, an `id` without control characters).
    /// False means "not certain": the text may be invalid, or use what this scan leaves to the
    /// parser and the schema tree (escapes, keys or enum-compared values that are not ASCII,
    /// unknown keys, nesting deeper than the parser allows). `RecordCheck` then decides, with
    /// the reason. It never passes a text `RecordCheck` would refuse (the tests hold it to
    /// that on mutated texts).
    func scan(_ bytes: [UInt8], limits: RecordLimits) -> Bool {
        guard keysAreASCII, enumsAreASCII, bytes.count <= limits.maximumBytes else { return false }
        return bytes.withUnsafeBufferPointer { text in
            nodes.withUnsafeBufferPointer { nodes in
                children.withUnsafeBufferPointer { children in
                    keyBytes.withReader { keys in
                        enumBytes.withReader { enums in
                            var scanner = Scanner(text: text, nodes: nodes, children: children, keys: keys, enums: enums,
                                                  maximumString: limits.maximumStringBytes)
                            scanner.skipWhitespace()
                            guard scanner.peek == UInt8(ascii: "{"), scanner.value(0, depth: 1) else { return false }
                            scanner.skipWhitespace()
                            return scanner.index == text.count
                        }
                    }
                }
            }
        }
    }

    private struct Scanner {
        let text: UnsafeBufferPointer<UInt8>
        let nodes: UnsafeBufferPointer<Node>
        let children: UnsafeBufferPointer<Int32>
        let keys: ByteTable.Reader
        let enums: ByteTable.Reader
        let maximumString: Int
        var index = 0

        init(text: UnsafeBufferPointer<UInt8>, nodes: UnsafeBufferPointer<Node>, children: UnsafeBufferPointer<Int32>,
             keys: ByteTable.Reader, enums: ByteTable.Reader, maximumString: Int) {
            self.text = text; self.nodes = nodes; self.children = children; self.keys = keys; self.enums = enums
            self.maximumString = maximumString
        }

        var peek: UInt8 { index < text.count ? text[index] : 0 }

        mutating func skipWhitespace() {
            while index < text.count, text[index] == 0x20 || text[index] == 0x0A || text[index] == 0x0D || text[index] == 0x09 {
                index += 1
            }
        }

        /// A string without escapes or control characters, its quotes consumed: its bytes
        /// (without quotes) and whether they are ASCII; nil to leave it to the parser.
        mutating func string() -> (range: Range<Int>, ascii: Bool)? {
            index += 1
            let start = index
            var high: UInt8 = 0
            while index < text.count {
                let byte = text[index]
                if byte == UInt8(ascii: "\"") {
                    let range = start..<index
                    index += 1
                    guard range.count <= maximumString else { return nil }
                    if high >= 0x80 {
                        // Not ASCII: valid UTF-8 (String's own validation says so) or the parser's.
                        guard String(validating: UnsafeBufferPointer(rebasing: text[range]), as: UTF8.self) != nil else { return nil }
                    }
                    return (range, high < 0x80)
                }
                // Escapes, control characters and DEL (not allowed in an id, which this scan does
                // not tell from other strings) go the long way.
                if byte == UInt8(ascii: "\\") || byte < 0x20 || byte == 0x7F { return nil }
                high |= byte
                index += 1
            }
            return nil
        }

        func equal(_ range: Range<Int>, _ table: ByteTable.Reader, _ i: Int) -> Bool {
            let start = Int(table.offsets[i]), end = Int(table.offsets[i + 1])
            guard end - start == range.count else { return false }
            return range.isEmpty || memcmp(table.bytes.baseAddress! + start, text.baseAddress! + range.lowerBound, range.count) == 0
        }

        /// The number at `index`, read as the parser reads it.
        mutating func number() -> Double? {
            let number = JSONParser.number(in: text, at: index)
            index = number.end
            guard case .value(let value, _) = number.outcome else { return nil }
            return value
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard index + count <= text.count, memcmp(text.baseAddress! + index, word.utf8Start, count) == 0 else { return false }
            index += count
            return true
        }

        /// The value at `index` against schema node `n`; false to leave the record to `RecordCheck`.
        mutating func value(_ n: Int32, depth: Int) -> Bool {
            let node = nodes[Int(n)]
            guard !node.needsTree, depth <= JSONParser.maximumDepth else { return false }
            func allows(_ kind: UInt8) -> Bool { !node.checksType || node.typeMask & kind != 0 }
            switch peek {
            case UInt8(ascii: "\""):
                guard allows(16), let (range, ascii) = string() else { return false }
                if node.enumCount >= 0 {
                    // Non-ASCII text against ASCII values: String equality is canonical
                    // equivalence there, which bytes do not decide.
                    guard ascii else { return false }
                    let first = Int(node.enumStart)
                    guard (first..<first + Int(node.enumCount)).contains(where: { equal(range, enums, $0) }) else { return false }
                }
                if node.countsCharacters, node.minLength > 0 || range.count > node.maxLength {
                    // Valid UTF-8: scalars are the bytes that do not continue one.
                    var count = 0
                    for i in range where text[i] & 0xC0 != 0x80 { count += 1 }
                    if count < node.minLength || count > node.maxLength { return false }
                }
                return true
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard let n = number(), node.enumCount < 0 else { return false }
                let integral = n.rounded() == n && abs(n) < 9.007_199_254_740_992e15
                return allows(integral ? 4 | 8 : 8) && n >= node.minimum && n <= node.maximum
            case UInt8(ascii: "t"):
                return allows(2) && node.enumCount < 0 && literal("true")
            case UInt8(ascii: "f"):
                return allows(2) && node.enumCount < 0 && literal("false")
            case UInt8(ascii: "n"):
                return allows(1) && node.enumCount < 0 && literal("null")
            case UInt8(ascii: "["):
                guard allows(32), node.enumCount < 0 else { return false }
                index += 1
                skipWhitespace()
                var count = 0
                if peek == UInt8(ascii: "]") { index += 1; return true }
                while true {
                    skipWhitespace()
                    count += 1
                    guard count <= node.maxItems else { return false }
                    if node.items >= 0 {
                        guard value(node.items, depth: depth + 1) else { return false }
                    } else {
                        return false  // elements of no schema: the parser checks them
                    }
                    skipWhitespace()
                    if peek == UInt8(ascii: ",") { index += 1; continue }
                    if peek == UInt8(ascii: "]") { index += 1; return true }
                    return false
                }
            case UInt8(ascii: "{"):
                guard allows(64), node.enumCount < 0 else { return false }
                index += 1
                skipWhitespace()
                let first = Int(node.childStart), end = first + Int(node.childCount)
                var seen: UInt64 = 0
                var next = first
                if peek == UInt8(ascii: "}") { index += 1; return node.required == 0 }
                while true {
                    skipWhitespace()
                    guard peek == UInt8(ascii: "\""), let (key, ascii) = string(), ascii, first < end else { return false }
                    // Unknown keys, allowed or not, go the long way (duplicates among them).
                    var found = -1
                    var c = next
                    repeat {
                        if equal(key, keys, c) { found = c; break }
                        c = c + 1 == end ? first : c + 1
                    } while c != next
                    guard found >= 0 else { return false }
                    let bit: UInt64 = 1 << UInt64(found - first)
                    guard seen & bit == 0 else { return false }  // a duplicate key
                    seen |= bit
                    next = found + 1 == end ? first : found + 1
                    skipWhitespace()
                    guard peek == UInt8(ascii: ":") else { return false }
                    index += 1
                    skipWhitespace()
                    guard value(children[found], depth: depth + 1) else { return false }
                    skipWhitespace()
                    if peek == UInt8(ascii: ",") { index += 1; continue }
                    if peek == UInt8(ascii: "}") { index += 1; return seen & node.required == node.required }
                    return false
                }
            default:
                return false
            }
        }
    }
}
