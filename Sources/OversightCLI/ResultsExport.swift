import Assessment
import LibPQ

/// Title, citation and severity of every rule a batch's packs hold (the `oversight.rules` view),
/// by pack id and rule id.
struct RuleTexts {
    struct Text { let title: String; let citation: String; let severity: String }
    private var texts: [String: Text] = [:]

    init(_ connection: PGConnection, batch: String) throws {
        let rows = try connection.query("""
            SELECT r.pack, r.rule, r.title, r.citation, r.severity FROM oversight.rules r
            WHERE r.criteria_sha256 = (SELECT b.criteria_sha256 FROM oversight.visible_batches b WHERE b.batch_id = \(batch)::uuid)
            """)
        for i in 0..<rows.rowCount {
            texts[rows.string(i, 0)! + "\u{0}" + rows.string(i, 1)!] = Text(title: rows.string(i, 2) ?? "", citation: rows.string(i, 3) ?? "",
                                                                            severity: rows.string(i, 4) ?? "")
        }
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

    struct Row {
        let seq: Int64
        let recordID: String?
        let verdict: String
        let score: Int
        let applies: String
        let result: JSONValue
        let inputSHA256: String
        let rowSHA256: String
        let worker: String
        let assessedAt: String
    }

    let batchID: String
    /// The batch's packs in order: one group of CSV columns each.
    let packs: [String]
    let rules: RuleTexts
    let format: Format

    var header: String {
        switch format {
        case .jsonl: return ""
        case .recordsCSV:
            var columns = ["seq", "record_id", "verdict", "score", "applies"]
            for pack in packs { columns += ["\(pack) verdict", "\(pack) score", "\(pack) binds"] }
            columns += ["fired_rules", "needs_information", "missing_fields", "input_sha256", "row_sha256"]
            return Self.csvLine(columns)
        case .findingsCSV:
            return Self.csvLine(["seq", "record_id", "pack", "pack_verdict", "pack_binds", "rule", "outcome", "severity", "points",
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
                    ("verdict", pack["verdict"] ?? .null), ("score", pack["score"] ?? .null), ("applies", pack["applies"] ?? .null),
                    ("binds", .bool(pack["applies"]?.stringValue == "binding")), ("findings", .array(findings)),
                ])
            }
            return JSONValue.object([
                ("batch_id", .string(batchID)), ("seq", .number(Double(row.seq))),
                ("record_id", row.recordID.map(JSONValue.string) ?? .null),
                ("verdict", .string(row.verdict)), ("score", .number(Double(row.score))), ("applies", .string(row.applies)),
                ("missing_fields", row.result["missing"] ?? .array([])), ("packs", .array(packs)),
                ("result", row.result), ("input_sha256", .string(row.inputSHA256)), ("row_sha256", .string(row.rowSHA256)),
                ("worker", .string(row.worker)), ("assessed_at", .string(row.assessedAt)),
            ]).canonicalString + "\n"
        case .recordsCSV:
            var byPack: [String: JSONValue] = [:]
            for pack in packResults { byPack[pack["pack"]?["id"]?.stringValue ?? ""] = pack }
            var fields = [String(row.seq), row.recordID ?? "", row.verdict, String(row.score), row.applies]
            for pack in packs {
                let result = byPack[pack]
                fields += [result?["verdict"]?.stringValue ?? "", result?["score"].map(Self.number) ?? "",
                           result.map { $0["applies"]?.stringValue == "binding" ? "yes" : "no" } ?? ""]
            }
            var fired: [String] = [], unknown: [String] = []
            for pack in packResults {
                for f in Self.findingsOf(pack) {
                    let rule = f["rule"]?.stringValue ?? ""
                    if f["outcome"]?.stringValue == "fired" { fired.append(rule) } else { unknown.append(rule) }
                }
            }
            fields += [fired.joined(separator: ";"), unknown.joined(separator: ";"), Self.strings(row.result["missing"]).joined(separator: ";"),
                       row.inputSHA256, row.rowSHA256]
            return Self.csvLine(fields)
        case .findingsCSV:
            var out = ""
            for pack in packResults {
                let id = pack["pack"]?["id"]?.stringValue ?? ""
                let binds = pack["applies"]?.stringValue == "binding" ? "yes" : "no"
                for f in Self.findingsOf(pack) {
                    let rule = f["rule"]?.stringValue ?? ""
                    let text = rules.text(pack: id, rule: rule)
                    out += Self.csvLine([String(row.seq), row.recordID ?? "", id, pack["verdict"]?.stringValue ?? "", binds, rule,
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
