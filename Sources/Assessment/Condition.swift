/// A compiled rule condition over the facts of a deployment record.
///
/// Pack syntax: `{"all": [...]}`, `{"any": [...]}`, `{"not": c}`, and leaves naming a
/// `field` (dotted path) with one of `equals`, `in`, `contains`, `contains_any`, `exists`,
/// `gt`, `gte`, `lt`, `lte`.
indirect enum Condition: Sendable {
    case all([Condition])
    case any([Condition])
    case not(Condition)
    case leaf(FieldPath, Test)

    enum Test: Sendable {
        case equals(JSONValue)
        case isIn([JSONValue])
        case contains(JSONValue)
        case containsAny([JSONValue])
        case exists(Bool)
        case compare(Comparison, Double)
    }

    enum Comparison: String, Sendable { case gt, gte, lt, lte }

    /// Evaluates in three-valued logic; `missing` collects the absent fields that left it unknown.
    func evaluate(_ record: JSONValue, missing: inout [String]) -> Truth {
        switch self {
        case .all(let parts):
            var result = Truth.yes
            var unknownFields: [String] = []
            for part in parts {
                switch part.evaluate(record, missing: &unknownFields) {
                case .no: return .no
                case .unknown: result = .unknown
                case .yes: break
                }
            }
            if result == .unknown { missing.append(contentsOf: unknownFields) }
            return result
        case .any(let parts):
            var result = Truth.no
            var unknownFields: [String] = []
            for part in parts {
                switch part.evaluate(record, missing: &unknownFields) {
                case .yes: return .yes
                case .unknown: result = .unknown
                case .no: break
                }
            }
            if result == .unknown { missing.append(contentsOf: unknownFields) }
            return result
        case .not(let inner):
            switch inner.evaluate(record, missing: &missing) {
            case .yes: return .no
            case .no: return .yes
            case .unknown: return .unknown
            }
        case .leaf(let path, let test):
            let value = path.lookup(in: record)
            if case .exists(let expected) = test {
                let present = value != nil && value != .null
                return present == expected ? .yes : .no
            }
            guard let value, value != .null else {
                missing.append(path.dotted)
                return .unknown
            }
            return test.apply(to: value) ? .yes : .no
        }
    }
}

extension Condition.Test {
    func apply(to value: JSONValue) -> Bool {
        switch self {
        case .equals(let expected): return value == expected
        case .isIn(let options): return options.contains(value)
        case .contains(let element):
            guard case .array(let elements) = value else { return value == element }
            return elements.contains(element)
        case .containsAny(let options):
            guard case .array(let elements) = value else { return options.contains(value) }
            return elements.contains { options.contains($0) }
        case .exists: return true
        case .compare(let op, let bound):
            guard case .number(let n) = value else { return false }
            switch op {
            case .gt: return n > bound
            case .gte: return n >= bound
            case .lt: return n < bound
            case .lte: return n <= bound
            }
        }
    }
}

/// A dotted field path, split once at compile time.
struct FieldPath: Sendable, Hashable {
    let keys: [String]
    let dotted: String

    init(_ dotted: String) {
        self.dotted = dotted
        self.keys = dotted.split(separator: ".").map(String.init)
    }

    @inline(__always)
    func lookup(in record: JSONValue) -> JSONValue? {
        var node = record
        for key in keys {
            guard let next = node[key] else { return nil }
            node = next
        }
        return node
    }
}
