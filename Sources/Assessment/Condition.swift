/// A compiled rule condition over the facts of a deployment record, evaluated in three-valued
/// logic: an absent field is unknown, never false.
///
/// Pack syntax: `{"all": [...]}`, `{"any": [...]}`, `{"not": c}`, `{"at_least": n, "of": [...]}`,
/// `{"ref": "definition"}`, and leaves naming a `field` (dotted path) with one of `equals`, `in`,
/// `contains`, `contains_any`, `contains_all`, `exists`, `gt`, `gte`, `lt`, `lte`.
indirect enum Condition: Sendable {
    case all([Condition])
    case any([Condition])
    case not(Condition)
    /// True when at least `n` parts are true; false when fewer than `n` can still be.
    case atLeast(Int, [Condition])
    case leaf(FieldPath, Test)

    enum Test: Sendable {
        case equals(JSONValue)
        case isIn([JSONValue])
        case contains(JSONValue)
        case containsAny([JSONValue])
        case containsAll([JSONValue])
        case exists(Bool)
        case compare(Comparison, Double)
    }

    enum Comparison: String, Sendable, CaseIterable { case gt, gte, lt, lte }

    /// The truth value; `missing` collects the absent fields that left it unknown.
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
        case .atLeast(let n, let parts):
            var yes = 0, unknown = 0
            var unknownFields: [String] = []
            for part in parts {
                switch part.evaluate(record, missing: &unknownFields) {
                case .yes: yes += 1
                case .unknown: unknown += 1
                case .no: break
                }
            }
            if yes >= n { return .yes }
            if yes + unknown < n { return .no }
            missing.append(contentsOf: unknownFields)
            return .unknown
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

    /// The truth value and the facts that decide it: for a true `all`, every part's facts; for
    /// a true `any`, the first true part's; for a false one, the reverse. Used to say why a
    /// rule fired, so it runs only for rules that fired.
    func decidingFacts(_ record: JSONValue, into facts: inout [String: JSONValue]) -> Truth {
        switch self {
        case .leaf(let path, let test):
            let value = path.lookup(in: record)
            var ignored: [String] = []
            let truth = evaluate(record, missing: &ignored)
            if truth != .unknown { facts[path.dotted] = value ?? .null }
            if case .exists = test, value == nil { facts[path.dotted] = .null }
            return truth
        case .not(let inner):
            switch inner.decidingFacts(record, into: &facts) {
            case .yes: return .no
            case .no: return .yes
            case .unknown: return .unknown
            }
        case .all(let parts), .any(let parts), .atLeast(_, let parts):
            var outcomes: [(Truth, [String: JSONValue])] = []
            for part in parts {
                var partFacts: [String: JSONValue] = [:]
                outcomes.append((part.decidingFacts(record, into: &partFacts), partFacts))
            }
            var ignored: [String] = []
            let truth = evaluate(record, missing: &ignored)
            let deciding: [[String: JSONValue]]
            switch (self, truth) {
            case (.all, .yes), (.any, .no): deciding = outcomes.map(\.1)
            case (.all, .no): deciding = outcomes.first { $0.0 == .no }.map { [$0.1] } ?? []
            case (.any, .yes): deciding = outcomes.first { $0.0 == .yes }.map { [$0.1] } ?? []
            case (.atLeast, .yes): deciding = outcomes.filter { $0.0 == .yes }.map(\.1)
            case (.atLeast, .no): deciding = outcomes.filter { $0.0 == .no }.map(\.1)
            default: deciding = []
            }
            for part in deciding { facts.merge(part) { a, _ in a } }
            return truth
        }
    }

    /// Every field path the condition reads.
    var fields: Set<String> {
        switch self {
        case .all(let parts), .any(let parts), .atLeast(_, let parts): parts.reduce(into: Set()) { $0.formUnion($1.fields) }
        case .not(let inner): inner.fields
        case .leaf(let path, _): [path.dotted]
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
        case .containsAll(let required):
            guard case .array(let elements) = value else { return required.allSatisfy { $0 == value } }
            return required.allSatisfy { elements.contains($0) }
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
