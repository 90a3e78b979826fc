import Assessment
import AuditStore

/// Title, citation and severity of every rule a batch's packs hold (the `oversight.rules` view),
/// by pack id and rule id.
struct RuleTexts {
    struct Text { let title: String; let citation: String; let severity: String }
    private var texts: [String: Text] = [:]

    init(_ rules: [RuleText]) {
        for r in rules { texts[r.pack + "\u{0}" + r.rule] = Text(title: r.title, citation: r.citation, severity: r.severity) }
    }

    init(_ entries: [(pack: String, rule: String, text: Text)]) {
        for e in entries { texts[e.pack + "\u{0}" + e.rule] = e.text }
    }

    func text(pack: String, rule: String) -> Text? { texts[pack + "\u{0}" + rule] }
}

/// Renders assessments as an analyst reads them without SQL: per pack its verdict, score and
/// whether it binds; per finding its outcome, title, citation and missing fields.
struct ResultsExport {
    enum Format { case jsonl, recordsCSV, findingsCSV }

    /// One stored assessment, as the store reads it.
    typealias Row = ExportedResult

    let batchID: String
    /// The batch's packs in order: one group of CSV columns each.
    let packs: [String]
    let rules: RuleTexts
    /// The words of each field's question (`oversight.field_questions`), by field path.
    let questionTexts: [String: String]
    let format: Format
    /// How many questions the records CSV spells out (the rest are in `other_question_fields`).
    static let csvQuestions = 3

    var header: String {
        switch format {
        case .jsonl: return ""
        case .recordsCSV:
            var columns = ["seq", "record_id", "verdict", "worst_case", "determined", "score", "worst_case_score", "applies"]
            for pack in packs { columns += ["\(pack) verdict", "\(pack) worst case", "\(pack) score", "\(pack) binds"] }
            columns += ["fired_rules", "open_rules"]
            for n in 1...Self.csvQuestions { columns += ["question_\(n)", "question_\(n)_fields", "question_\(n)_if_worst", "question_\(n)_if_best"] }
            columns += ["other_question_fields", "missing_fields", "input_sha256", "row_sha256"]
            return Self.csvLine(columns)
        case .findingsCSV:
            return Self.csvLine(["seq", "record_id", "pack", "pack_verdict", "pack_worst_case", "pack_binds", "rule", "outcome", "severity", "points",
                                 "title", "citation", "missing_fields"])
        }
    }

    /// A stored result's packs (engine 2 and later); engine 1 kept one pack at the top.
    static func packResults(_ result: JSONValue) -> [JSONValue] {
        if case .array(let list)? = result["packs"] { return list }
        return [result]
    }

    static func findingsOf(_ pack: JSONValue) -> [JSONValue] {
        if case .array(let list)? = pack["findings"] { return list }
        return []
    }

    /// A stored question with its words, as the exports give it.
    func question(_ q: JSONValue) -> JSONValue {
        let fields = Self.strings(q["fields"])
        return .object([
            ("fields", q["fields"] ?? .array([])),
            ("question", fields.first.flatMap { questionTexts[$0] }.map(JSONValue.string) ?? .null),
            ("rules", q["rules"] ?? .array([])),
            ("if_worst", q["if_worst"] ?? .null), ("if_best", q["if_best"] ?? .null),
        ])
    }

    static func list(_ value: JSONValue?) -> [JSONValue] {
        guard case .array(let list)? = value else { return [] }
        return list
    }

    static func strings(_ value: JSONValue?) -> [String] {
        guard case .array(let list)? = value else { return [] }
        return list.compactMap(\.stringValue)
    }

    mutating func render(_ row: Row) -> String {
        let packResults = Self.packResults(row.result)
        switch format {
        case .jsonl:
            let packs: [JSONValue] = packResults.map { pack in
                let id = pack["pack"]?["id"]?.stringValue ?? ""
                let findings: [JSONValue] = Self.findingsOf(pack).map { f in
                    let rule = f["rule"]?.stringValue ?? ""
                    let text = rules.text(pack: id, rule: rule)
                    return .object([
                        ("rule", .string(rule)), ("outcome", f["outcome"] ?? .null),
                        ("title", f["title"] ?? text.map { .string($0.title) } ?? .null),
                        ("citation", f["citation"] ?? text.map { .string($0.citation) } ?? .null),
                        ("severity", f["severity"] ?? text.map { .string($0.severity) } ?? .null),
                        ("points", f["points"] ?? .null), ("facts", f["facts"] ?? .object([])),
                        ("missing_fields", f["missing"] ?? .array([])),
                    ])
                }
                return .object([
                    ("pack", .string(id)), ("version", pack["pack"]?["version"] ?? .null),
                    ("verdict", pack["verdict"] ?? .null), ("worst_case", pack["worst_case"] ?? .null),
                    ("determined", pack["determined"] ?? .null), ("score", pack["score"] ?? .null),
                    ("worst_case_score", pack["worst_case_score"] ?? .null), ("applies", pack["applies"] ?? .null),
                    ("binds", .bool(pack["applies"]?.stringValue == "binding")), ("findings", .array(findings)),
                    ("questions", .array(Self.list(pack["questions"]).map(question))),
                    ("not_in_force", pack["not_in_force"] ?? .array([])),
                ])
            }
            return JSONValue.object([
                ("batch_id", .string(batchID)), ("seq", .number(Double(row.seq))),
                ("record_id", row.recordID.map(JSONValue.string) ?? .null),
                ("verdict", .string(row.verdict)), ("worst_case", row.worstCase.map(JSONValue.string) ?? .null),
                ("determined", row.determined.map(JSONValue.bool) ?? .null),
                ("score", .number(Double(row.score))), ("worst_case_score", row.result["worst_case_score"] ?? .null),
                ("applies", .string(row.applies)), ("as_of", row.result["as_of"] ?? .null),
                ("questions", .array(Self.list(row.result["questions"]).map(question))),
                ("missing_fields", row.result["missing"] ?? .array([])), ("packs", .array(packs)),
                ("result", row.result), ("input_sha256", .string(row.inputSHA256)), ("row_sha256", .string(row.rowSHA256)),
                ("worker", .string(row.worker)), ("assessed_at", .string(row.assessedAt)),
            ]).canonicalString + "\n"
        case .recordsCSV:
            var byPack: [String: JSONValue] = [:]
            for pack in packResults { byPack[pack["pack"]?["id"]?.stringValue ?? ""] = pack }
            var fields = [String(row.seq), row.recordID ?? "", row.verdict, row.worstCase ?? "",
                          row.determined.map { $0 ? "yes" : "no" } ?? "", String(row.score),
                          row.result["worst_case_score"].map(Self.number) ?? "", row.applies]
            for pack in packs {
                let result = byPack[pack]
                fields += [result?["verdict"]?.stringValue ?? "", result?["worst_case"]?.stringValue ?? "",
                           result?["score"].map(Self.number) ?? "",
                           result.map { $0["applies"]?.stringValue == "binding" ? "yes" : "no" } ?? ""]
            }
            var fired: [String] = [], open: [String] = []
            for pack in packResults {
                for f in Self.findingsOf(pack) {
                    let rule = f["rule"]?.stringValue ?? ""
                    if f["outcome"]?.stringValue == "fired" { fired.append(rule) } else { open.append(rule) }
                }
            }
            // Engine 4 names the open rules in its questions.
            let questions = Self.list(row.result["questions"])
            for q in questions { for rule in Self.strings(q["rules"]) where !open.contains(rule) { open.append(rule) } }
            fields += [fired.joined(separator: ";"), open.joined(separator: ";")]
            for n in 0..<Self.csvQuestions {
                let q = n < questions.count ? question(questions[n]) : .null
                fields += [q["question"]?.stringValue ?? "", Self.strings(q["fields"]).joined(separator: ";"),
                           q["if_worst"]?.stringValue ?? "", q["if_best"]?.stringValue ?? ""]
            }
            fields += [questions.dropFirst(Self.csvQuestions).flatMap { Self.strings($0["fields"]) }.joined(separator: ";"),
                       Self.strings(row.result["missing"]).joined(separator: ";"), row.inputSHA256, row.rowSHA256]
            return Self.csvLine(fields)
        case .findingsCSV:
            var out = ""
            for pack in packResults {
                let id = pack["pack"]?["id"]?.stringValue ?? ""
                let binds = pack["applies"]?.stringValue == "binding" ? "yes" : "no"
                for f in Self.findingsOf(pack) {
                    let rule = f["rule"]?.stringValue ?? ""
                    let text = rules.text(pack: id, rule: rule)
                    out += Self.csvLine([String(row.seq), row.recordID ?? "", id, pack["verdict"]?.stringValue ?? "",
                                         pack["worst_case"]?.stringValue ?? "", binds, rule,
                                         f["outcome"]?.stringValue ?? "", f["severity"]?.stringValue ?? text?.severity ?? "",
                                         f["points"].map(Self.number) ?? "", f["title"]?.stringValue ?? text?.title ?? "",
                                         f["citation"]?.stringValue ?? text?.citation ?? "", Self.strings(f["missing"]).joined(separator: ";")])
                }
            }
            return out
        }
    }

    static func number(_ value: JSONValue) -> String {
        if case .number(let n) = value { return n == n.rounded() ? String(Int64(n)) : String(n) }
        return value.stringValue ?? ""
    }

    /// One CSV line (RFC 4180): fields with a comma, quote or line break are quoted.
    static func csvLine(_ fields: [String]) -> String {
        fields.map { s in
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }.joined(separator: ",") + "\n"
    }
}
