import ArgumentParser
import Assessment
import Foundation
import AuditStore
import Identifiers
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
            let store = try database.store(applicationName: "oversight-questions")
            let id = BatchID(batch)!
            guard try store.isVisible(batchID: id) else { throw CommandFailure("no batch \(batch) in this database (or not visible to this login)") }
            // Rule texts of the batch's packs, and which pack each rule is in.
            var packOf: [String: String] = [:]
            var texts: [String: (title: String, citation: String, severity: Verdict)] = [:]
            for r in try store.ruleTexts(batchID: id) where packOf[r.rule] == nil {
                packOf[r.rule] = r.pack
                texts[r.rule] = (r.title.isEmpty ? r.rule : r.title, r.citation, Verdict(rawValue: r.severity) ?? .minimal)
            }
            // Whether each pack binds each operator: binding for any of its deployments.
            let separator = "\u{1F}"
            var binds: Set<String> = []
            for b in try store.operatorBindings(batchID: id) where b.binds {
                binds.insert(Self.name(b.operatorName) + separator + b.pack)
            }
            var byOperator: [String: [RequestDraft.Asked]] = [:]
            var order: [String] = []
            var operatorsAsked: Set<String> = []
            for q in try store.openQuestions(batchID: id) {
                let name = Self.name(q.operatorName)
                operatorsAsked.insert(name)
                if let wanted = self.operator, !Self.matches(name, wanted) { continue }
                if byOperator[name] == nil { order.append(name) }
                byOperator[name, default: []].append(RequestDraft.Asked(
                    recordID: q.recordID, system: q.system, rank: q.rank, fields: q.fields,
                    question: q.question ?? "What is \(q.fields.joined(separator: ", "))?",
                    rules: q.rules, ifWorst: Verdict(rawValue: q.ifWorst) ?? .minimal))
            }
            if order.isEmpty {
                if let wanted = self.operator {
                    let known = operatorsAsked.sorted()
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
