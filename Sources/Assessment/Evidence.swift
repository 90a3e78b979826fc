/// Which inferred facts an assessment counts: none (declared facts only), those the text
/// states, or all (stated and implied).
public enum EvidenceUse: String, Sendable, CaseIterable {
    case off, stated, all
}

/// A declared fact and an inferred one that disagree: the declared one counts, and the
/// disagreement is reported.
public struct EvidenceConflict: Sendable, Hashable {
    public let inferred: InferredFact
    public let declared: JSONValue

    var json: JSONValue { .object([("declared", declared), ("inferred", inferred.json)]) }
}

/// Declared facts first, then the record's inferred facts where the record is silent.
enum Evidence {
    struct Merged {
        let record: JSONValue
        let used: [InferredFact]
        let conflicts: [EvidenceConflict]
    }

    static func merge(_ record: JSONValue, _ use: EvidenceUse) -> Merged {
        guard use != .off, case .array(let items)? = record["inferred"], !items.isEmpty else { return Merged(record: record, used: [], conflicts: []) }
        var merged = record
        var used: [InferredFact] = [], conflicts: [EvidenceConflict] = []
        for item in items {
            guard let fact = InferredFact(item), use == .all || fact.strength == .stated else { continue }
            let keys = fact.field.split(separator: ".").map(String.init)
            let declared = value(at: keys, in: record)
            if let declared {
                if !agrees(declared, fact.value) { conflicts.append(EvidenceConflict(inferred: fact, declared: declared)) }
                continue
            }
            if case .array(let adding) = fact.value, case .array(let earlier)? = value(at: keys, in: merged) {
                merged.set(path: keys, .array(earlier + adding.filter { !earlier.contains($0) }))
            } else if value(at: keys, in: merged) != nil {
                continue  // an earlier inferred fact already set it
            } else {
                merged.set(path: keys, fact.value)
            }
            used.append(fact)
        }
        return Merged(record: merged, used: used, conflicts: conflicts)
    }

    /// The fields the used facts set, by number.
    static func fields(_ used: [InferredFact], _ table: FieldTable) -> FieldSet {
        var set = FieldSet()
        for fact in used { if let field = table.index[fact.field] { set.insert(field) } }
        return set
    }

    static func value(at keys: [String], in record: JSONValue) -> JSONValue? {
        var value: JSONValue? = record
        for key in keys { value = value?[key] }
        return value == .null ? nil : value
    }

    /// A declared list agrees with an inferred one that it contains; anything else must be equal.
    static func agrees(_ declared: JSONValue, _ inferred: JSONValue) -> Bool {
        if case .array(let d) = declared, case .array(let i) = inferred { return i.allSatisfy(d.contains) }
        return declared == inferred
    }
}
