import ArgumentParser
import Assessment
import Foundation
import LibPQ
import Reporting

struct QuestionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "questions",
        abstract: "Draft a public-records request per operator from a batch's open questions.",
        discussion: """
            Gathers the ranked open questions of an operator's deployments in the batch — each asked once, with why it matters (the rule it decides and its citation) and the deployments it concerns — into a draft an NGO can edit and send as a public-records or freedom-of-information request. Where a pack does not bind the operator (a US agency and the EU AI Act), the draft frames the point as a recognised standard, not a breach of law.

            Formats: md (a draft per operator that reads on its own), csv (one question per row, for a spreadsheet), json.

            Example:
              oversight questions 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 \\
                  --operator "Palm Springs Police Department" > request.md
              oversight questions BATCH --format csv --database "$DB" > all.csv
            """)

    @Argument(help: "The batch (its id).") var batch: String
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Only this operator: its operator.name, or \"name, region\" to pick one of several of that name (any case).")
    var `operator`: String?
    @Option(help: "md, csv or json.") var format = "md"

    func validate() throws {
        guard UUID(uuidString: batch) != nil else { throw ValidationError("\(batch) is not a batch id; give the UUID that submit or status printed") }
        guard ["md", "csv", "json"].contains(format) else { throw ValidationError("unknown --format \"\(format)\"; use md, csv or json") }
    }

    /// What a record without operator.name is listed under.
    static let unnamed = "(operator not named)"

    func run() throws {
        try runOrExit {
            let db = try database.connect(applicationName: "oversight-questions")
            let exists = try db.query("SELECT 1 FROM oversight.batch_progress WHERE batch_id = \(batch)::uuid")
            guard exists.rowCount == 1 else { throw CommandFailure("no batch \(batch) in this database (or not visible to this login)") }
            // Rule texts of the batch's packs, and which pack each rule is in.
            let ruleRows = try db.query("""
                SELECT r.pack, r.rule, r.title, r.citation, r.severity FROM oversight.rules r
                WHERE r.criteria_sha256 = (SELECT b.criteria_sha256 FROM oversight.visible_batches b WHERE b.batch_id = \(batch)::uuid)
                """)
            var packOf: [String: String] = [:]
            var texts: [String: (title: String, citation: String, severity: Verdict)] = [:]
            for i in 0..<ruleRows.rowCount {
                let rule = ruleRows.string(i, 1)!
                if packOf[rule] == nil {
                    packOf[rule] = ruleRows.string(i, 0)!
                    texts[rule] = (ruleRows.string(i, 2) ?? rule, ruleRows.string(i, 3) ?? "", Verdict(rawValue: ruleRows.string(i, 4) ?? "") ?? .minimal)
                }
            }
            // Whether each pack binds each operator: binding for any of its deployments.
            let separator = "\u{1F}"
            let applies = try db.query("""
                SELECT concat_ws(', ', nullif(trim(s.record::jsonb->'operator'->>'name'), ''), nullif(trim(s.record::jsonb->'operator'->>'region'), '')), p.pack, bool_or(p.applies = 'binding')
                FROM oversight.pack_results p JOIN oversight.submitted_records s USING (batch_id, seq)
                WHERE p.batch_id = \(batch)::uuid GROUP BY 1, 2
                """)
            var binds: Set<String> = []
            for i in 0..<applies.rowCount where applies.bool(i, 2) == true {
                binds.insert(Self.name(applies.string(i, 0)) + separator + applies.string(i, 1)!)
            }
            let rows = try db.query("""
                SELECT concat_ws(', ', nullif(trim(s.record::jsonb->'operator'->>'name'), ''), nullif(trim(s.record::jsonb->'operator'->>'region'), '')), coalesce(q.record_id, 'seq ' || q.seq),
                       coalesce(s.record::jsonb->'system'->>'name', s.record::jsonb->'system'->>'type', 'a system'),
                       q.rank, array_to_string(q.fields, \(separator)), coalesce(q.question, ''), array_to_string(q.rules, \(separator)), q.if_worst
                FROM oversight.questions q JOIN oversight.submitted_records s USING (batch_id, seq)
                WHERE q.batch_id = \(batch)::uuid ORDER BY q.seq, q.rank
                """)
            var byOperator: [String: [RequestDraft.Asked]] = [:]
            var order: [String] = []
            for i in 0..<rows.rowCount {
                let name = Self.name(rows.string(i, 0))
                if let wanted = self.operator, !Self.matches(name, wanted) { continue }
                if byOperator[name] == nil { order.append(name) }
                let fields = (rows.string(i, 4) ?? "").split(separator: Character(separator)).map(String.init)
                byOperator[name, default: []].append(RequestDraft.Asked(
                    recordID: rows.string(i, 1) ?? "", system: rows.string(i, 2) ?? "", rank: rows.int(i, 3) ?? 0, fields: fields,
                    question: rows.string(i, 5).flatMap { $0.isEmpty ? nil : $0 } ?? "What is \(fields.joined(separator: ", "))?",
                    rules: (rows.string(i, 6) ?? "").split(separator: Character(separator)).map(String.init),
                    ifWorst: Verdict(rawValue: rows.string(i, 7) ?? "") ?? .minimal))
            }
            if order.isEmpty {
                if let wanted = self.operator {
                    let names = try db.query("""
                        SELECT DISTINCT concat_ws(', ', nullif(trim(s.record::jsonb->'operator'->>'name'), ''), nullif(trim(s.record::jsonb->'operator'->>'region'), '')) FROM oversight.questions q
                        JOIN oversight.submitted_records s USING (batch_id, seq) WHERE q.batch_id = \(batch)::uuid ORDER BY 1 LIMIT 11
                        """)
                    let known = (0..<names.rowCount).map { Self.name(names.string($0, 0)) }
                    throw CommandFailure("no deployment of \"\(wanted)\" has an open question in batch \(batch)"
                                         + (known.isEmpty ? "" : "; operators with questions: \(known.prefix(10).joined(separator: "; "))\(known.count > 10 ? ", …" : "")"))
                }
                printError("batch \(batch) has no open questions: every assessment is determined")
            }
            let drafts = order.map { name in
                RequestDraft(operator: name, asked: byOperator[name]!, rules: Dictionary(uniqueKeysWithValues: texts.map { id, text in
                    (id, RequestDraft.Rule(id: id, title: text.title, citation: text.citation, severity: text.severity,
                                           binds: binds.contains(name + separator + (packOf[id] ?? ""))))
                }))
            }
            switch format {
            case "csv":
                var out = RequestDraft.csvLine(["operator", "number", "question", "fields", "lead_rule", "title", "citation", "binds",
                                                "could_become", "deployments", "records"])
                for draft in drafts { out += draft.csv.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).dropFirst().joined() }
                StandardOutput.write(out)
            case "json":
                StandardOutput.write(JSONValue.array(drafts.map(\.json)).canonicalString + "\n")
            default:
                StandardOutput.write(drafts.map(\.markdown).joined(separator: "\n"))
            }
            printError("\(plural(drafts.count, "operator")), \(plural(drafts.reduce(0) { $0 + $1.items.count }, "question"))")
        }
    }

    /// The operator's name with its region ("Monroe County Sheriff's Office, NY"): agencies of one
    /// name in several states are several operators. `wanted` matches it whole or its name alone.
    static func matches(_ display: String, _ wanted: String) -> Bool {
        let d = display.lowercased(), w = wanted.lowercased().trimmingCharacters(in: .whitespaces)
        return d == w || d.hasPrefix(w + ", ")
    }

    static func name(_ stored: String?) -> String {
        guard let stored, !stored.trimmingCharacters(in: .whitespaces).isEmpty else { return unnamed }
        return stored
    }
}
