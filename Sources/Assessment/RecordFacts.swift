/// Every leaf field of the deployment schema, numbered once, with its enum values: the
/// vocabulary that compiled rules test against.
final class FieldTable: Sendable {
    struct Field: Sendable {
        let path: String
        /// Enum values, for enum fields and arrays of enums (at most 64); empty otherwise.
        let values: [String]
        let isArray: Bool
    }

    /// A node of the schema's object tree, for walking a record once.
    final class Node: Sendable {
        let children: [(key: String, node: Node)]
        let field: Int?
        init(children: [(key: String, node: Node)], field: Int?) { self.children = children; self.field = field }
    }

    let fields: [Field]
    let index: [String: Int]
    let root: Node

    /// Fields are numbered in the order of their paths' UTF-8 bytes, so a `FieldSet`'s members
    /// come out already sorted as canonical JSON wants them.
    init(schema: RecordSchema) {
        func isObject(_ schema: RecordSchema) -> Bool {
            schema.types == ["object"] || (!schema.properties.isEmpty && schema.types == nil)
        }
        var leaves: [(path: String, schema: RecordSchema)] = []
        func collect(_ schema: RecordSchema, path: String) {
            if isObject(schema) {
                for key in schema.propertyOrder { collect(schema.properties[key]!, path: path.isEmpty ? key : "\(path).\(key)") }
            } else {
                leaves.append((path, schema))
            }
        }
        collect(schema, path: "")
        leaves.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        precondition(leaves.count <= 256, "the deployment schema has more than 256 leaf fields; widen FieldSet")
        fields = leaves.map { leaf in
            let values = leaf.schema.allowedValues ?? []
            return Field(path: leaf.path, values: values.count <= 64 ? values : [], isArray: leaf.schema.isArray)
        }
        let numbers = Dictionary(uniqueKeysWithValues: fields.enumerated().map { ($1.path, $0) })
        index = numbers
        func build(_ schema: RecordSchema, path: String) -> Node {
            if isObject(schema) {
                return Node(children: schema.propertyOrder.map { key in
                    (key, build(schema.properties[key]!, path: path.isEmpty ? key : "\(path).\(key)"))
                }, field: nil)
            }
            return Node(children: [], field: numbers[path])
        }
        root = build(schema, path: "")
    }

    static let deployment = FieldTable(schema: .deployment)

    func symbol(_ value: String, of field: Int) -> Int? { fields[field].values.firstIndex(of: value) }
}

/// One fact of a record, in a form rules test cheaply: enum values as numbers and sets of enum
/// values as bit masks.
enum Fact: Sendable {
    case absent
    case bool(Bool)
    case number(Double)
    case symbol(Int)
    case symbols(UInt64)
    case other(JSONValue)
}

/// The facts of one record, extracted once and shared by every rule of every pack.
struct RecordFacts {
    var facts: [Fact]
    /// The values as submitted, for reporting which facts made a rule fire.
    var values: [JSONValue?]

    init(_ record: JSONValue, table: FieldTable = .deployment) {
        facts = Array(repeating: .absent, count: table.fields.count)
        values = Array(repeating: nil, count: table.fields.count)
        Self.walk(record, table.root, table, &facts, &values)
    }

    private static func walk(_ value: JSONValue, _ node: FieldTable.Node, _ table: FieldTable, _ facts: inout [Fact], _ values: inout [JSONValue?]) {
        if let field = node.field {
            if value == .null { return }
            values[field] = value
            facts[field] = fact(value, field: field, table: table)
            return
        }
        guard case .object(let members) = value else { return }
        for member in members {
            for child in node.children where child.key == member.key {
                walk(member.value, child.node, table, &facts, &values)
                break
            }
        }
    }

    private static func fact(_ value: JSONValue, field: Int, table: FieldTable) -> Fact {
        let spec = table.fields[field]
        switch value {
        case .bool(let b): return .bool(b)
        case .number(let n): return .number(n)
        case .string(let s):
            if !spec.values.isEmpty, let i = table.symbol(s, of: field) { return .symbol(i) }
            return .other(value)
        case .array(let elements) where !spec.values.isEmpty:
            var mask: UInt64 = 0
            for element in elements {
                guard case .string(let s) = element, let i = table.symbol(s, of: field) else { return .other(value) }
                mask |= 1 << UInt64(i)
            }
            return .symbols(mask)
        default: return .other(value)
        }
    }
}

/// A set of field numbers as a 256-bit mask: no allocation, no hashing.
struct FieldSet: Hashable, Sendable {
    static func == (a: FieldSet, b: FieldSet) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(words.0); hasher.combine(words.1); hasher.combine(words.2); hasher.combine(words.3)
    }

    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    @inline(__always)
    mutating func insert(_ field: Int) {
        let bit = UInt64(1) << UInt64(field & 63)
        switch field >> 6 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
    }

    mutating func formUnion(_ other: FieldSet) {
        words.0 |= other.words.0; words.1 |= other.words.1; words.2 |= other.words.2; words.3 |= other.words.3
    }

    var isEmpty: Bool { words.0 | words.1 | words.2 | words.3 == 0 }

    /// The members, ascending.
    var members: [Int] {
        var out: [Int] = []
        for (w, word) in [words.0, words.1, words.2, words.3].enumerated() where word != 0 {
            for b in 0..<64 where word & (1 << UInt64(b)) != 0 { out.append(w * 64 + b) }
        }
        return out
    }
}
