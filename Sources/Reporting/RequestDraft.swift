public import Assessment

/// The open questions of one operator's deployments, gathered into a draft of a public-records
/// (freedom-of-information) request an NGO can edit and send: each question once, with why it
/// matters (the rule it decides and its citation) and the deployments it concerns. Pure: built
/// from rows the store gives, rendered as Markdown, CSV or JSON.
public struct RequestDraft: Sendable, Hashable {
    /// One open question of one deployment, as `oversight.questions` has it.
    public struct Asked: Sendable, Hashable {
        public let recordID: String
        /// What the deployment is (its system name, or type), for the reader.
        public let system: String
        public let rank: Int
        public let fields: [String]
        public let question: String
        public let rules: [String]
        public let ifWorst: Verdict
        public init(recordID: String, system: String, rank: Int, fields: [String], question: String, rules: [String], ifWorst: Verdict) {
            self.recordID = recordID; self.system = system; self.rank = rank; self.fields = fields
            self.question = question; self.rules = rules; self.ifWorst = ifWorst
        }
    }

    /// What a rule is, and whether its pack binds the operator in law.
    public struct Rule: Sendable, Hashable {
        public let id: String
        public let title: String
        public let citation: String
        public let severity: Verdict
        public let binds: Bool
        public init(id: String, title: String, citation: String, severity: Verdict, binds: Bool) {
            self.id = id; self.title = title; self.citation = citation; self.severity = severity; self.binds = binds
        }
    }

    /// One question of the draft: asked once for every deployment it concerns.
    public struct Item: Sendable, Hashable {
        public let fields: [String]
        public let question: String
        /// The rule it decides first, and the others it decides.
        public let lead: Rule
        public let others: [Rule]
        /// The most severe verdict an answer could settle.
        public let ifWorst: Verdict
        /// The deployments it concerns (record id, system), in the order first asked.
        public let deployments: [(id: String, system: String)]
        /// Its best rank among those deployments' questions (1 first).
        public let bestRank: Int

        public static func == (a: Item, b: Item) -> Bool {
            a.fields == b.fields && a.question == b.question && a.lead == b.lead && a.others == b.others && a.ifWorst == b.ifWorst
                && a.deployments.map(\.id) == b.deployments.map(\.id) && a.bestRank == b.bestRank
        }
        public func hash(into hasher: inout Hasher) { hasher.combine(fields); hasher.combine(question) }
    }

    public let organisation: String
    public let items: [Item]
    public let deployments: Int

    /// Gathers one operator's questions: each field asked once; the most severe rule any answer
    /// could settle first, then the question that concerns the most deployments, then the best
    /// rank, then the field. `rules` names every rule by id.
    public init(operator name: String, asked: [Asked], rules: [String: Rule]) {
        organisation = name
        deployments = Set(asked.map(\.recordID)).count
        var order: [[String]] = []
        var byFields: [[String]: [Asked]] = [:]
        for a in asked.sorted(by: { ($0.recordID, $0.rank) < ($1.recordID, $1.rank) }) {
            if byFields[a.fields] == nil { order.append(a.fields) }
            byFields[a.fields, default: []].append(a)
        }
        let unknown = { (id: String) in Rule(id: id, title: id, citation: "", severity: .minimal, binds: false) }
        var items: [Item] = []
        for fields in order {
            let group = byFields[fields]!
            let best = group.min { $0.rank < $1.rank }!
            let ruleIDs = group.flatMap(\.rules).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            let resolved = ruleIDs.map { rules[$0] ?? unknown($0) }
            // Lead: the best-ranked deployment's lead rule.
            let lead = rules[best.rules.first ?? ""] ?? resolved.first ?? unknown("")
            var seen: Set<String> = []
            let deployments = group.compactMap { a -> (id: String, system: String)? in
                seen.insert(a.recordID).inserted ? (a.recordID, a.system) : nil
            }
            items.append(Item(fields: fields, question: best.question, lead: lead, others: resolved.filter { $0.id != lead.id },
                              ifWorst: group.map(\.ifWorst).min()!, deployments: deployments, bestRank: best.rank))
        }
        self.items = items.sorted { a, b in
            if a.ifWorst != b.ifWorst { return a.ifWorst < b.ifWorst }
            if a.deployments.count != b.deployments.count { return a.deployments.count > b.deployments.count }
            if a.bestRank != b.bestRank { return a.bestRank < b.bestRank }
            return a.fields.lexicographicallyPrecedes(b.fields)
        }
    }

    /// Why a question matters, framed as law where the pack binds the operator and as a
    /// recognised standard where it does not.
    public static func why(_ item: Item) -> String {
        let rule = item.lead
        let consequence = item.ifWorst == .minimal ? "" : "; the answer could make the deployment \(String(item.ifWorst.rawValue.map { $0 == "_" ? " " : $0 }))"
        if rule.binds {
            return "It decides whether \(rule.citation) is met (\(rule.title))\(consequence)."
        }
        return "\(rule.citation) sets a recognised standard here, not a legal obligation of this operator: \(rule.title)\(consequence)."
    }
}

extension RequestDraft {
    /// A Markdown draft that reads well on its own; record text is escaped.
    public var markdown: String {
        var out = "# Draft request for records: \(Self.escape(organisation))\n\n"
        out += "To the records officer of \(Self.escape(organisation)),\n\n"
        out += "Under the applicable public-records law, we request records that answer the questions below about "
        out += "\(deployments == 1 ? "one surveillance technology" : "\(deployments) surveillance technologies") your agency uses or has used. "
        out += "Where a record does not exist, please say so.\n\n"
        for (n, item) in items.enumerated() {
            out += "## \(n + 1). \(Self.escape(item.question))\n\n"
            out += "- Why it matters: \(Self.escape(Self.why(item)))\n"
            if !item.others.isEmpty {
                let shown = item.others.prefix(3).map { Self.escape("\($0.title) (\($0.citation))") }
                let more = item.others.count > 3 ? "; and \(item.others.count - 3) more" : ""
                out += "- It also decides: \(shown.joined(separator: "; "))\(more)\n"
            }
            let listed = item.deployments.map { "\(Self.escape($0.system)) (record \(Self.escape($0.id)))" }
            out += "- Concerns: \(listed.joined(separator: ", "))\n"
            out += "- Facts asked for: \(item.fields.map { "`\($0)`" }.joined(separator: ", "))\n\n"
        }
        out += "---\n\nDrafted with Oversight from the open questions of the assessments; not legal advice. "
        out += "Edit before sending: the questions are written for the agency, the reasons for you.\n"
        return out
    }

    /// One question per row, for a spreadsheet (RFC 4180).
    public var csv: String {
        var out = Self.csvLine(["operator", "number", "question", "fields", "lead_rule", "title", "citation", "binds", "could_become",
                                "deployments", "records"])
        for (n, item) in items.enumerated() {
            out += Self.csvLine([organisation, String(n + 1), item.question, item.fields.joined(separator: ";"), item.lead.id, item.lead.title,
                                 item.lead.citation, item.lead.binds ? "yes" : "no", item.ifWorst.rawValue, String(item.deployments.count),
                                 item.deployments.map(\.id).joined(separator: ";")])
        }
        return out
    }

    public var json: JSONValue {
        .object([
            ("operator", .string(organisation)),
            ("deployments", .number(Double(deployments))),
            ("questions", .array(items.map { item in
                .object([
                    ("question", .string(item.question)),
                    ("fields", .array(item.fields.map(JSONValue.string))),
                    ("why", .string(Self.why(item))),
                    ("lead_rule", .object([("id", .string(item.lead.id)), ("title", .string(item.lead.title)),
                                           ("citation", .string(item.lead.citation)), ("binds", .bool(item.lead.binds))])),
                    ("also_decides", .array(item.others.map { .string($0.id) })),
                    ("could_become", .string(item.ifWorst.rawValue)),
                    ("deployments", .array(item.deployments.map { .object([("record_id", .string($0.id)), ("system", .string($0.system))]) })),
                ])
            })),
        ])
    }

    /// Record text in Markdown: characters that would format, link, or embed markup are escaped,
    /// and a line break cannot start a heading or a list.
    public static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "\\", "`", "*", "_", "[", "]", "<", ">", "|", "~", "#":
                out.append("\\"); out.append(c)
            case "\n", "\r": out.append(" ")
            default: out.append(c)
            }
        }
        return out
    }

    /// One CSV line (`CSVField.line`).
    public static func csvLine(_ fields: [String]) -> String { CSVField.line(fields) }
}
