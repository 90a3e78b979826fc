#if canImport(Glibc)
import Glibc
#endif

/// Every leaf field of the deployment schema, numbered once, with its enum values: the
/// vocabulary that compiled rules test against.
final class FieldTable: Sendable {
    struct Field: Sendable {
        let path: String
        /// The path's keys, for reading the field's value from a record.
        let keys: [String]
        /// Enum values, for enum fields and arrays of enums (at most 64); empty otherwise.
        let values: [String]
        let isArray: Bool
        /// What to ask whoever can answer when this field is unknown (the schema's `x-question`).
        let question: String

        init(path: String, values: [String], isArray: Bool, question: String? = nil) {
            self.path = path
            self.question = question
                ?? "What is \(path)?\(values.isEmpty ? "" : " (one of: \(values.joined(separator: ", ")))")"
            keys = path.split(separator: ".").map(String.init)
            self.values = values
            self.isArray = isArray
        }
    }

    let fields: [Field]
    /// The enum values of all fields as UTF-8, flat for the per-record lookup: field f's are
    /// values `enums[f].start ..< enums[f].start + enums[f].count`, value j's bytes
    /// `valueBytes[valueOffsets[j] ..< valueOffsets[j + 1]]`; `enums[f].ascii` when all are ASCII.
    struct Enum: Sendable {
        let start: Int32
        let count: Int32
        let ascii: Bool
    }
    let enums: [Enum]
    let valueOffsets: [Int32]
    let valueBytes: [UInt8]
    /// The schema's object tree, flattened for the per-record walk (no reference counting): node i's
    /// children are `childKeys/childNodes[childStart[i] ..< childStart[i] + childCount[i]]`, and
    /// `nodeField[i]` is its field number, or -1 for an object.
    let childStart: [Int32]
    let childCount: [Int32]
    let childKeys: [String]
    let childNodes: [Int32]
    let nodeField: [Int32]
    /// Each field's path as a JSON string literal, ready to copy into canonical output.
    let quotedPaths: ByteTable
    let index: [String: Int]
    /// The field that says where the operator is (for whether a pack binds), if the schema has it.
    let countryField: Int?

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
            return Field(path: leaf.path, values: values.count <= 64 ? values : [], isArray: leaf.schema.isArray,
                         question: leaf.schema.question)
        }
        var enums: [Enum] = [], valueOffsets: [Int32] = [0], valueBytes: [UInt8] = []
        for field in fields {
            enums.append(Enum(start: Int32(valueOffsets.count - 1), count: Int32(field.values.count),
                              ascii: field.values.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }))
            for value in field.values {
                valueBytes += value.utf8
                valueOffsets.append(Int32(valueBytes.count))
            }
        }
        self.enums = enums
        self.valueOffsets = valueOffsets
        self.valueBytes = valueBytes
        let numbers = Dictionary(uniqueKeysWithValues: fields.enumerated().map { ($1.path, $0) })
        index = numbers
        quotedPaths = ByteTable(fields.map { field in
            var quoted: [UInt8] = []
            JSONValue.writeString(field.path, into: &quoted)
            return quoted
        })
        countryField = numbers["operator.country"]
        var start: [Int32] = [], count: [Int32] = [], keys: [String] = [], nodes: [Int32] = [], field: [Int32] = []
        func flatten(_ schema: RecordSchema, path: String) -> Int32 {
            let index = Int32(start.count)
            let object = isObject(schema)
            start.append(0); count.append(0); field.append(object ? -1 : Int32(numbers[path] ?? -1))
            guard object else { return index }
            // In the byte order of their keys, as canonical JSON has them, so that the walk of a
            // canonical record finds each key at its first try.
            let children = schema.propertyOrder.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { key in
                (key, flatten(schema.properties[key]!, path: path.isEmpty ? key : "\(path).\(key)"))
            }
            start[Int(index)] = Int32(keys.count)
            count[Int(index)] = Int32(children.count)
            for (key, child) in children { keys.append(key); nodes.append(child) }
            return index
        }
        _ = flatten(schema, path: "")
        childStart = start; childCount = count; childKeys = keys; childNodes = nodes; nodeField = field
    }

    static let deployment = FieldTable(schema: .deployment)

    /// The number of `value` among the field's enum values (the walk has a faster copy).
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
    /// Free text or a value no enum covers: tests read it from the record.
    case other
}

/// The facts of one record, extracted once and shared by every rule of every pack.
struct RecordFacts {
    var facts: [Fact]
    let record: JSONValue
    let table: FieldTable
    /// The operator's country as two upper-case ASCII letters packed in 16 bits, when it is such
    /// a code (what binding_in lists); `countryText` otherwise.
    let countryCode: UInt16?
    let countryText: String?

    init(_ record: JSONValue, table: FieldTable = .deployment) {
        self.record = record
        self.table = table
        facts = Array(repeating: .absent, count: table.fields.count)
        let country = Self.walk(record, table, &facts)
        if let code = country {
            var utf8 = code.utf8.makeIterator()
            if let a = utf8.next(), let b = utf8.next(), utf8.next() == nil, let code = CountryCode(a, b) {
                countryCode = code
                countryText = nil
            } else {
                countryCode = nil
                countryText = code.uppercased()
            }
        } else {
            countryCode = nil
            countryText = nil
        }
    }

    /// The field's value as submitted (nil when absent or null), for reporting facts and for
    /// tests on free text; read from the record, since few rules need it.
    func value(of field: Int) -> JSONValue? { Self.value(of: field, in: record, table) }

    static func value(of field: Int, in record: JSONValue, _ table: FieldTable) -> JSONValue? {
        var value = record
        for key in table.fields[field].keys {
            guard case .object(let members) = value, let next = members.first(where: { $0.key == key }) else { return nil }
            value = next.value
        }
        return value == .null ? nil : value
    }

    /// Fills `facts` from the record; returns the operator's country as submitted, if a string.
    private static func walk(_ record: JSONValue, _ table: FieldTable, _ facts: inout [Fact]) -> String? {
        table.childStart.withUnsafeBufferPointer { start in
            table.childCount.withUnsafeBufferPointer { count in
                table.childKeys.withUnsafeBufferPointer { keys in
                    table.childNodes.withUnsafeBufferPointer { nodes in
                        table.nodeField.withUnsafeBufferPointer { fields in
                          table.enums.withUnsafeBufferPointer { enums in
                           table.valueOffsets.withUnsafeBufferPointer { offsets in
                            table.valueBytes.withUnsafeBufferPointer { bytes in
                              facts.withUnsafeMutableBufferPointer { out in
                                let tree = Tree(start: start, count: count, keys: keys, nodes: nodes, fields: fields, enums: enums,
                                                valueOffsets: offsets, valueBytes: bytes, table: table,
                                                countryField: table.countryField ?? -1)
                                var country: String? = nil
                                tree.walk(record, node: 0, into: out, country: &country)
                                return country
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

    /// The flattened schema tree, borrowed for one walk.
    private struct Tree {
        let start: UnsafeBufferPointer<Int32>
        let count: UnsafeBufferPointer<Int32>
        let keys: UnsafeBufferPointer<String>
        let nodes: UnsafeBufferPointer<Int32>
        let fields: UnsafeBufferPointer<Int32>
        let enums: UnsafeBufferPointer<FieldTable.Enum>
        let valueOffsets: UnsafeBufferPointer<Int32>
        let valueBytes: UnsafeBufferPointer<UInt8>
        unowned(unsafe) let table: FieldTable
        let countryField: Int

        func walk(_ value: borrowing JSONValue, node: Int32, into facts: UnsafeMutableBufferPointer<Fact>, country: inout String?) {
            guard case .object(let members) = copy value else { return }
            // Buffers, not iterators: reading members in place spares a retain and release of
            // every key and value (this walk runs for every record).
            members.withUnsafeBufferPointer { members in
                let first = Int(start[Int(node)]), end = first + Int(count[Int(node)])
                guard first < end else { return }
                // Keys are looked for from just after the last one found, wrapping around: a
                // record whose keys are in the schema's (byte) order finds each at the first try.
                var next = first
                for m in members.indices {
                    var c = next
                    repeat {
                        if keys[c] == members[m].key {
                            let child = nodes[c]
                            let field = Int(fields[Int(child)])
                            if field >= 0 {
                                if case .null = members[m].value {
                                } else {
                                    facts[field] = fact(members[m].value, field: field)
                                    if field == countryField, case .string(let code) = members[m].value { country = code }
                                }
                            } else {
                                walk(members[m].value, node: child, into: facts, country: &country)
                            }
                            next = c + 1 == end ? first : c + 1
                            break
                        }
                        c = c + 1 == end ? first : c + 1
                    } while c != next
                }
            }
        }

        @inline(__always)
        func fact(_ value: borrowing JSONValue, field: Int) -> Fact {
            let isEnum = enums[field].count > 0
            switch value {
            case .bool(let b): return .bool(b)
            case .number(let n): return .number(n)
            case .string(let s):
                if isEnum, let i = symbol(s, of: field) { return .symbol(i) }
                return .other
            case .array(let elements) where isEnum:
                var mask: UInt64 = 0
                for element in elements {
                    guard case .string(let s) = element, let i = symbol(s, of: field) else { return .other }
                    mask |= 1 << UInt64(i)
                }
                return .symbols(mask)
            default: return .other
            }
        }

        /// `FieldTable.symbol`, faster: an ASCII value against ASCII enum values compares bytes
        /// (for ASCII, String equality is byte equality); anything else compares as Strings
        /// (canonical equivalence).
        func symbol(_ value: String, of field: Int) -> Int? {
            let info = enums[field]
            if info.ascii, let found: Int? = value.utf8.withContiguousStorageIfAvailable({ bytes -> Int?? in
                var ascii: UInt8 = 0
                for byte in bytes { ascii |= byte }
                guard ascii < 0x80 else { return nil }
                for j in Int(info.start)..<Int(info.start + info.count) {
                    let start = Int(valueOffsets[j]), end = Int(valueOffsets[j + 1])
                    if end - start == bytes.count, bytes.count == 0 || memcmp(valueBytes.baseAddress! + start, bytes.baseAddress!, bytes.count) == 0 {
                        return .some(j - Int(info.start))
                    }
                }
                return .some(nil)
            }) ?? nil {
                return found
            }
            return table.symbol(value, of: field)
        }
    }

}

/// A two-letter country code as a number in 0..<676 (case-insensitive), for a bit-set lookup.
func CountryCode(_ a: UInt8, _ b: UInt8) -> UInt16? {
    func letter(_ c: UInt8) -> UInt16? {
        switch c {
        case 0x41...0x5A: UInt16(c - 0x41)
        case 0x61...0x7A: UInt16(c - 0x61)
        default: nil
        }
    }
    guard let x = letter(a), let y = letter(b) else { return nil }
    return x * 26 + y
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

    /// Every field: what can decide a condition that is already decided.
    static let all: FieldSet = {
        var set = FieldSet()
        set.words = (~0, ~0, ~0, ~0)
        return set
    }()

    @inline(__always)
    func contains(_ field: Int) -> Bool {
        let bit = UInt64(1) << UInt64(field & 63)
        switch field >> 6 {
        case 0: return words.0 & bit != 0
        case 1: return words.1 & bit != 0
        case 2: return words.2 & bit != 0
        default: return words.3 & bit != 0
        }
    }

    @inline(__always)
    func intersection(_ other: FieldSet) -> FieldSet {
        var out = FieldSet()
        out.words = (words.0 & other.words.0, words.1 & other.words.1, words.2 & other.words.2, words.3 & other.words.3)
        return out
    }

    @inline(__always)
    func union(_ other: FieldSet) -> FieldSet {
        var out = self
        out.formUnion(other)
        return out
    }

    var count: Int {
        words.0.nonzeroBitCount + words.1.nonzeroBitCount + words.2.nonzeroBitCount + words.3.nonzeroBitCount
    }

    /// Calls `body` with each member, ascending; allocates nothing.
    @inline(__always)
    func forEach(_ body: (Int) -> Void) {
        Self.each(words.0, 0, body); Self.each(words.1, 64, body); Self.each(words.2, 128, body); Self.each(words.3, 192, body)
    }

    @inline(__always)
    private static func each(_ word: UInt64, _ base: Int, _ body: (Int) -> Void) {
        var rest = word
        while rest != 0 {
            body(base + rest.trailingZeroBitCount)
            rest &= rest - 1
        }
    }

    /// The members, ascending.
    var members: [Int] {
        var out: [Int] = []
        forEach { out.append($0) }
        return out
    }
}
