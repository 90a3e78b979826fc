/// What an agency's answers changed: the facts of a record that supersedes an earlier one (a
/// later record with the same id, or one that names it in `supersedes`) that the earlier record
/// did not have, or had otherwise — each marked when the earlier assessment had asked for it.
public struct AnswersBack: Sendable, Hashable {
    public struct Answer: Sendable, Hashable {
        public let field: String
        /// The earlier value; nil when the earlier record left the field unknown.
        public let before: JSONValue?
        public let after: JSONValue
        /// Whether the earlier assessment asked for this fact (it was among its questions).
        public let asked: Bool
    }

    public let answers: [Answer]

    /// Fields that identify or describe a record rather than state a fact rules test.
    static let bookkeeping: Set<String> = ["id", "summary", "sources", "inferred", "supersedes"]

    /// Compares two records field by field (schema order, that is path order); `asked` holds the
    /// fields of the earlier assessment's questions.
    public static func between(_ earlier: JSONValue, _ later: JSONValue, asked: Set<String>) -> AnswersBack {
        between(earlier, later, asked: asked, table: .deployment)
    }

    static func between(_ earlier: JSONValue, _ later: JSONValue, asked: Set<String>, table: FieldTable) -> AnswersBack {
        var answers: [Answer] = []
        for field in table.fields.indices {
            let path = table.fields[field].path
            if bookkeeping.contains(path) { continue }
            guard let after = RecordFacts.value(of: field, in: later, table) else { continue }
            let before = RecordFacts.value(of: field, in: earlier, table)
            if before == after { continue }
            answers.append(Answer(field: path, before: before, after: after, asked: asked.contains(path)))
        }
        return AnswersBack(answers: answers)
    }

    /// "system.timing = "post" (asked); data.retention_days 30 → 90".
    public var summary: String {
        answers.map { answer in
            let value = answer.after.canonicalString
            let change = answer.before.map { "\(answer.field) \($0.canonicalString) → \(value)" } ?? "\(answer.field) = \(value)"
            return change + (answer.asked ? " (asked)" : "")
        }.joined(separator: "; ")
    }
}

extension Verdict {
    /// How a verdict range moved: `limited — could be prohibited → high_risk`.
    public static func movement(from before: (settled: Verdict, worst: Verdict), to after: (settled: Verdict, worst: Verdict)) -> String {
        let a = range(before.settled, before.worst), b = range(after.settled, after.worst)
        return a == b ? "unchanged: \(b)" : "\(a) → \(b)"
    }
}
