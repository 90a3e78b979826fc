public import Assessment

/// Everything a batch report shows, read from the audit store; `html` renders it as one
/// self-contained page (no script, font or image from elsewhere; charts are inline SVG).
public struct BatchReport: Sendable {
    public struct Batch: Sendable {
        public var id: String, organisation: String, name: String, source: String, state: String
        public var accepted: Int64, rejected: Int64, assessed: Int64, deadLetters: Int64
        public var createdAt: String, completedAt: String?, asOf: String?, reassessmentOf: String?
        public init(id: String, organisation: String, name: String, source: String, state: String, accepted: Int64, rejected: Int64,
                    assessed: Int64, deadLetters: Int64, createdAt: String, completedAt: String?, asOf: String?, reassessmentOf: String?) {
            self.id = id; self.organisation = organisation; self.name = name; self.source = source; self.state = state
            self.accepted = accepted; self.rejected = rejected; self.assessed = assessed; self.deadLetters = deadLetters
            self.createdAt = createdAt; self.completedAt = completedAt; self.asOf = asOf; self.reassessmentOf = reassessmentOf
        }
    }

    /// Records by a key (empty for the whole batch), settled verdict and worst case.
    public struct Count: Sendable, Hashable {
        public var key: String, verdict: String, worstCase: String?, records: Int64
        public init(key: String, verdict: String, worstCase: String?, records: Int64) {
            self.key = key; self.verdict = verdict; self.worstCase = worstCase; self.records = records
        }
    }

    public struct Rule: Sendable {
        public var pack: String, rule: String, title: String, citation: String, severity: String, rationale: String, records: Int64
        public init(pack: String, rule: String, title: String, citation: String, severity: String, rationale: String, records: Int64) {
            self.pack = pack; self.rule = rule; self.title = title; self.citation = citation; self.severity = severity
            self.rationale = rationale; self.records = records
        }
    }

    public struct Question: Sendable {
        public var field: String, text: String, records: Int64, first: Int64
        public init(field: String, text: String, records: Int64, first: Int64) { self.field = field; self.text = text; self.records = records; self.first = first }
    }

    public struct Rejections: Sendable {
        public var field: String, records: Int64, firstLine: Int64, message: String
        public init(field: String, records: Int64, firstLine: Int64, message: String) {
            self.field = field; self.records = records; self.firstLine = firstLine; self.message = message
        }
    }

    public struct DeadLetter: Sendable {
        public var seq: Int64, line: Int64?, attempts: Int, lastError: String, open: Bool
        public init(seq: Int64, line: Int64?, attempts: Int, lastError: String, open: Bool) {
            self.seq = seq; self.line = line; self.attempts = attempts; self.lastError = lastError; self.open = open
        }
    }

    public struct Seal: Sendable {
        public var number: Int, merkleRoot: String, keyFingerprint: String, sealedAt: String, assessments: Int64
        /// Whether `audit verify` passed when the report was made, and what it said.
        public var verified: Bool, verification: String
        /// The login the check ran as.
        public var login: String
        public init(number: Int, merkleRoot: String, keyFingerprint: String, sealedAt: String, assessments: Int64,
                    verified: Bool, verification: String, login: String) {
            self.number = number; self.merkleRoot = merkleRoot; self.keyFingerprint = keyFingerprint; self.sealedAt = sealedAt
            self.assessments = assessments; self.verified = verified; self.verification = verification; self.login = login
        }
    }

    public struct Move: Sendable {
        public var recordID: String, previousBatch: String, movement: String, answers: String
        public init(recordID: String, previousBatch: String, movement: String, answers: String) {
            self.recordID = recordID; self.previousBatch = previousBatch; self.movement = movement; self.answers = answers
        }
    }

    public struct Entry: Sendable {
        public var seq: Int64, recordID: String?, operatorName: String?, region: String?, system: String?
        public var verdict: String, worstCase: String?, applies: String, firstQuestion: String?
        /// The record's explanation (the same text as `oversight explain`).
        public var explanation: String
        public init(seq: Int64, recordID: String?, operatorName: String?, region: String?, system: String?, verdict: String,
                    worstCase: String?, applies: String, firstQuestion: String?, explanation: String) {
            self.seq = seq; self.recordID = recordID; self.operatorName = operatorName; self.region = region; self.system = system
            self.verdict = verdict; self.worstCase = worstCase; self.applies = applies; self.firstQuestion = firstQuestion
            self.explanation = explanation
        }
    }

    public var batch: Batch
    public var generatedAt: String
    public var criteria: CriteriaSet
    public var engine: String
    public var verdicts: [Count] = []
    public var bySystem: [Count] = []
    public var byRegion: [Count] = []
    public var byApplicability: [Count] = []
    public var rules: [Rule] = []
    public var questions: [Question] = []
    public var evidence: (recordsWithFacts: Int64, factsUsed: Int64, restingOnInferred: Int64) = (0, 0, 0)
    public var moves: [Move] = []
    public var movesTotal = 0
    public var rejections: [Rejections] = []
    public var deadLetters: [DeadLetter] = []
    public var seal: Seal?
    public var index: [Entry] = []
    /// Said above the index when it lists only part of the batch (and where the rest is).
    public var indexNote: String?

    public init(batch: Batch, generatedAt: String, criteria: CriteriaSet, engine: String) {
        self.batch = batch; self.generatedAt = generatedAt; self.criteria = criteria; self.engine = engine
    }
}

// MARK: Rendering

extension BatchReport {
    static let order = ["prohibited", "high_risk", "elevated", "limited", "minimal"]
    public static let colours = ["prohibited": "#8b0000", "high_risk": "#c2410c", "elevated": "#b45309", "limited": "#1d4ed8", "minimal": "#15803d"]

    /// Totals by a verdict function, in severity order (verdicts with no records left out).
    public static func totals(_ counts: [Count], by value: (Count) -> String?) -> [(label: String, value: Int64)] {
        var sums: [String: Int64] = [:]
        for c in counts { sums[value(c) ?? "not recorded", default: 0] += c.records }
        return (order + sums.keys.filter { !order.contains($0) }.sorted()).compactMap { v in sums[v].map { (v, $0) } }
    }

    public static func verdictText(_ verdict: String, _ worst: String?) -> String {
        guard let worst, worst != verdict else { return verdict }
        return "\(verdict) — could be \(worst)"
    }

    /// The page, as well-formed XHTML: every piece of record text escaped, a Content-Security-
    /// Policy that runs no script, charts drawn here as SVG with their numbers beside them.
    public var html: String {
        var h = HTMLWriter()
        h.raw("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
        h.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"/>\n")
        h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n")
        h.element("title", "Oversight report: \(batch.name)")
        h.raw("\n<style>\(Self.css)</style>\n</head>\n<body>\n")

        h.raw("<header>")
        h.element("h1", "Assessment report: \(batch.name)")
        h.raw("<p class=\"meta\">")
        h.text("Batch \(batch.id) of \(batch.organisation), from \(batch.source); \(batch.state); submitted \(batch.createdAt)")
        if let completed = batch.completedAt { h.text(", completed \(completed)") }
        h.text("; the law as of \(batch.asOf ?? "the day each record was assessed"). Report made \(generatedAt).")
        if let old = batch.reassessmentOf { h.text(" It assesses again the records of batch \(old).") }
        h.raw("</p>")
        h.raw("<p class=\"notice\">")
        h.text("Not legal advice. This is an assessment of the facts stated in each record against the criteria packs' reading of the law; where a pack does not bind the operator (an agency outside the EU and the EU AI Act, say), its rules apply here as a benchmark, a recognised standard, not a legal obligation.")
        h.raw("</p></header>\n")

        // At a glance.
        h.raw("<section id=\"glance\">")
        h.element("h2", "The batch at a glance")
        h.raw("<table class=\"totals\"><tr>")
        for (label, value) in [("accepted", batch.accepted), ("assessed", batch.assessed), ("rejected", batch.rejected), ("dead letters", batch.deadLetters)] {
            h.raw("<td><span class=\"n\" data-total=\"\(HTMLWriter.escape(label))\">\(value)</span><br/>")
            h.text(label)
            h.raw("</td>")
        }
        h.raw("</tr></table>")
        h.raw("<div class=\"charts\">")
        h.raw(SVGChart.bars(id: "settled", title: "Records by settled verdict", items: Self.totals(verdicts) { $0.verdict }, colours: Self.colours))
        h.raw(SVGChart.bars(id: "worst", title: "Records by worst case", items: Self.totals(verdicts) { $0.worstCase }, colours: Self.colours))
        h.raw(SVGChart.bars(id: "applies", title: "Whether the law binds the operator", items: Self.totals(byApplicability) { $0.key }, colours: [:]))
        h.raw("</div>")
        h.element("h3", "Settled verdict and worst case")
        h.raw("<table><tr><th>settled verdict</th><th>worst case</th><th class=\"num\">records</th></tr>")
        for c in verdicts.sorted(by: { ($0.verdict, $0.worstCase ?? "") < ($1.verdict, $1.worstCase ?? "") }) {
            h.raw("<tr>"); h.cell(c.verdict); h.cell(c.worstCase ?? "not recorded"); h.cell(String(c.records), class: "num"); h.raw("</tr>")
        }
        h.raw("</table></section>\n")

        for (id, title, counts) in [("systems", "By technology or system type", bySystem), ("regions", "By operator region (country / state or region)", byRegion)] {
            h.raw("<section id=\"\(id)\">")
            h.element("h2", title)
            var keys: [String: Int64] = [:]
            for c in counts { keys[c.key, default: 0] += c.records }
            let top = keys.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            h.raw(SVGChart.bars(id: id, title: title, items: top.prefix(25).map { ($0.key, $0.value) }, colours: [:]))
            if top.count > 25 { h.element("p", "The chart shows the 25 largest of \(top.count); the table lists all.") }
            h.raw("<table><tr><th>\(id == "systems" ? "system" : "region")</th><th>settled verdict — worst case</th><th class=\"num\">records</th></tr>")
            for (key, _) in top {
                for c in counts.filter({ $0.key == key }).sorted(by: { $0.records > $1.records }) {
                    h.raw("<tr>"); h.cell(key); h.cell(Self.verdictText(c.verdict, c.worstCase)); h.cell(String(c.records), class: "num"); h.raw("</tr>")
                }
            }
            h.raw("</table></section>\n")
        }

        h.raw("<section id=\"rules\">")
        h.element("h2", "The rules that fired most")
        if rules.isEmpty { h.element("p", "No rule fired on the known facts of any record.") }
        else {
            h.raw("<table><tr><th>rule</th><th>citation</th><th>severity</th><th class=\"num\">records</th><th>why it matters</th></tr>")
            for r in rules {
                h.raw("<tr><td>"); h.text(r.title); h.raw("<br/><code>"); h.text("\(r.pack) / \(r.rule)"); h.raw("</code></td>")
                h.cell(r.citation); h.cell(r.severity); h.cell(String(r.records), class: "num"); h.cell(r.rationale); h.raw("</tr>")
            }
            h.raw("</table>")
        }
        h.raw("</section>\n<section id=\"questions\">")
        h.element("h2", "The open questions that would settle the most records")
        if questions.isEmpty { h.element("p", "No open question: every record's verdict is determined.") }
        else {
            h.raw("<table><tr><th>question</th><th>fact</th><th class=\"num\">records asking</th><th class=\"num\">asked first</th></tr>")
            for q in questions {
                h.raw("<tr>"); h.cell(q.text); h.raw("<td><code>"); h.text(q.field); h.raw("</code></td>")
                h.cell(String(q.records), class: "num"); h.cell(String(q.first), class: "num"); h.raw("</tr>")
            }
            h.raw("</table>")
            h.element("p", "`oversight questions BATCH --operator NAME` drafts them as a public-records request to one operator.")
        }
        h.raw("</section>\n<section id=\"evidence\">")
        h.element("h2", "Facts read from the records' text")
        h.raw("<p>")
        h.text("\(evidence.recordsWithFacts) records carry facts read from their own text or from the vendor register (\(evidence.factsUsed) facts counted); \(evidence.restingOnInferred) verdicts rest on such facts alone (every rule that settles them reads one). Declared facts always win over inferred ones.")
        h.raw("</p></section>\n")

        if movesTotal > 0 {
            h.raw("<section id=\"moves\">")
            h.element("h2", "How verdicts moved since earlier assessments")
            h.element("p", "\(movesTotal) records supersede an earlier assessment in the organisation (the same id, or the one they name in supersedes); \(moves.count) moved.")
            h.raw("<table><tr><th>record</th><th>earlier batch</th><th>moved</th><th>what changed</th></tr>")
            for m in moves.prefix(500) {
                h.raw("<tr>"); h.cell(m.recordID); h.cell(m.previousBatch); h.cell(m.movement); h.cell(m.answers); h.raw("</tr>")
            }
            h.raw("</table></section>\n")
        }

        h.raw("<section id=\"rejections\">")
        h.element("h2", "Rejections and dead letters")
        let rejected = rejections.reduce(0) { $0 + $1.records }
        h.element("p", rejected == 0 ? "No line of the submitted file was rejected." : "\(rejected) lines were rejected (kept in oversight.rejected_records), by field:")
        if !rejections.isEmpty {
            h.raw("<table><tr><th>field</th><th class=\"num\">lines</th><th>first line</th><th>message</th></tr>")
            for r in rejections {
                h.raw("<tr>"); h.cell(r.field.isEmpty ? "(the record)" : r.field); h.cell(String(r.records), class: "num"); h.cell(String(r.firstLine), class: "num"); h.cell(r.message); h.raw("</tr>")
            }
            h.raw("</table>")
        }
        let open = deadLetters.filter(\.open)
        h.element("p", open.isEmpty ? "No job is dead-lettered." : "\(open.count) jobs are dead-lettered (given up after repeated failures; `oversight retry` queues them again):")
        if !open.isEmpty {
            h.raw("<table><tr><th>seq</th><th>line</th><th class=\"num\">attempts</th><th>last error</th></tr>")
            for d in open.prefix(100) {
                h.raw("<tr>"); h.cell(String(d.seq)); h.cell(d.line.map(String.init) ?? ""); h.cell(String(d.attempts), class: "num"); h.cell(d.lastError); h.raw("</tr>")
            }
            h.raw("</table>")
        }
        h.raw("</section>\n")

        h.raw("<section id=\"criteria\">")
        h.element("h2", "Criteria, engine and hashes")
        h.raw("<p>"); h.text("Criteria set "); h.raw("<code>"); h.text(criteria.sha256.hexString); h.raw("</code>"); h.text("; \(engine).")
        h.raw("</p><table><tr><th>pack</th><th>version</th><th>binds</th><th>SHA-256</th><th>source</th></tr>")
        for p in criteria.packs {
            h.raw("<tr>"); h.cell(p.title); h.cell(p.version)
            h.cell(p.bindingIn.isEmpty ? "a benchmark everywhere" : "binds in \(p.bindingIn.sorted().joined(separator: ", ")); a benchmark elsewhere")
            h.raw("<td><code>"); h.text(p.sha256Hex); h.raw("</code></td>"); h.cell(p.source ?? ""); h.raw("</tr>")
        }
        h.raw("</table></section>\n")

        h.raw("<section id=\"seal\">")
        h.element("h2", "Seal")
        if let seal {
            h.raw("<table>")
            for (k, v) in [("seal", String(seal.number)), ("Merkle root", seal.merkleRoot), ("signer's key fingerprint", seal.keyFingerprint),
                           ("sealed", seal.sealedAt), ("assessments covered", String(seal.assessments)),
                           ("audit verify when this report was made", seal.verified ? "passed" : "FAILED"), ("checked as login", seal.login)] {
                h.raw("<tr><th>"); h.text(k); h.raw("</th><td><code>"); h.text(v); h.raw("</code></td></tr>")
            }
            h.raw("</table>")
            h.raw("<pre class=\"verify\">"); h.text(seal.verification); h.raw("</pre>")
        } else {
            h.element("p", "The batch is not sealed yet (it is sealed when every accepted record is assessed or dead-lettered).")
        }
        h.raw("</section>\n")

        h.raw("<section id=\"records\">")
        h.element("h2", "Records")
        if let indexNote { h.raw("<p class=\"note\">"); h.text(indexNote); h.raw("</p>") }
        h.raw("<table class=\"index\"><tr><th>record</th><th>operator</th><th>system</th><th>settled verdict — worst case</th><th>law</th><th>first question</th></tr>")
        for e in index {
            h.raw("<tr><td><a href=\"#r\(e.seq)\">"); h.text(e.recordID ?? "seq \(e.seq)"); h.raw("</a></td>")
            h.cell([e.operatorName, e.region].compactMap { $0 }.joined(separator: ", "))
            h.cell(e.system ?? ""); h.raw("<td class=\"v-\(HTMLWriter.escape(e.verdict))\">"); h.text(Self.verdictText(e.verdict, e.worstCase)); h.raw("</td>")
            h.cell(e.applies == "binding" ? "binds" : e.applies == "benchmark" ? "benchmark" : "depends on the country")
            h.cell(e.firstQuestion ?? ""); h.raw("</tr>")
        }
        h.raw("</table>")
        for e in index {
            h.raw("<details id=\"r\(e.seq)\"><summary>"); h.text("\(e.recordID ?? "seq \(e.seq)"): \(Self.verdictText(e.verdict, e.worstCase))"); h.raw("</summary><pre>")
            h.text(e.explanation); h.raw("</pre></details>\n")
        }
        h.raw("</section>\n<footer><p>")
        h.text("Not legal advice. Sources of the packs' reading of the law: \(criteria.packs.compactMap(\.source).joined(separator: "; ")). Made by Oversight from the audit store; every number here is a count over oversight.results and the views beside it.")
        h.raw("</p></footer>\n</body>\n</html>\n")
        return h.out
    }

    static let css = """
        body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#111}
        h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}table{border-collapse:collapse;margin:.5em 0}
        td,th{border:1px solid #ddd;padding:.25em .5em;vertical-align:top;text-align:left}.num{text-align:right}
        .notice{background:#fff7e6;border-left:4px solid #b45309;padding:.5em 1em}.meta{color:#444}
        .totals td{text-align:center;border:none;padding:0 1.5em}.totals .n{font-size:1.8em;font-weight:600}
        .charts{display:flex;flex-wrap:wrap;gap:1em}pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}
        .v-prohibited{color:#8b0000;font-weight:600}.v-high_risk{color:#c2410c}code{font-size:.9em;word-break:break-all}
        @media print{details{display:block}details>pre{display:block}}
        """
}

/// Text into XHTML: every string escaped on the way in.
public struct HTMLWriter {
    public private(set) var out = ""
    public init() {}
    public static func escape(_ s: String) -> String {
        var r = ""
        r.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": r += "&amp;"
            case "<": r += "&lt;"
            case ">": r += "&gt;"
            case "\"": r += "&quot;"
            case "'": r += "&#39;"
            // Characters XML does not allow, even escaped: shown as U+FFFD.
            case _ where ch.value < 0x20 && ch != "\n" && ch != "\t" && ch != "\r": r += "\u{FFFD}"
            case _ where ch.value == 0xFFFE || ch.value == 0xFFFF: r += "\u{FFFD}"
            default: r.unicodeScalars.append(ch)
            }
        }
        return r
    }
    public mutating func raw(_ s: String) { out += s }
    public mutating func text(_ s: String) { out += Self.escape(s) }
    public mutating func element(_ name: String, _ text: String) { out += "<\(name)>\(Self.escape(text))</\(name)>" }
    public mutating func cell(_ text: String, class c: String? = nil) { out += c.map { "<td class=\"\($0)\">" } ?? "<td>"; self.text(text); out += "</td>" }
}

/// Horizontal bar charts drawn as SVG, the number beside each bar (and in `data-value`).
public enum SVGChart {
    public static func bars(id: String, title: String, items: [(label: String, value: Int64)], colours: [String: String]) -> String {
        let rowHeight = 22, labelWidth = 210, barWidth = 260
        let height = max(1, items.count) * rowHeight + 28
        let largest = max(1, items.map(\.value).max() ?? 1)
        var s = "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart-\(HTMLWriter.escape(id))\" width=\"\(labelWidth + barWidth + 80)\" height=\"\(height)\" role=\"img\" aria-label=\"\(HTMLWriter.escape(title))\">"
        s += "<text x=\"0\" y=\"16\" font-weight=\"600\" font-size=\"13\">\(HTMLWriter.escape(title))</text>"
        if items.isEmpty { s += "<text x=\"0\" y=\"40\" font-size=\"12\">no records</text>" }
        for (i, item) in items.enumerated() {
            let y = 28 + i * rowHeight
            let w = Int((Double(item.value) / Double(largest) * Double(barWidth)).rounded())
            let label = item.label.count > 32 ? String(item.label.prefix(31)) + "…" : item.label
            s += "<g class=\"bar\" data-label=\"\(HTMLWriter.escape(item.label))\" data-value=\"\(item.value)\">"
            s += "<text x=\"0\" y=\"\(y + 14)\" font-size=\"12\">\(HTMLWriter.escape(label))</text>"
            s += "<rect x=\"\(labelWidth)\" y=\"\(y + 3)\" width=\"\(max(w, item.value > 0 ? 1 : 0))\" height=\"15\" fill=\"\(colours[item.label] ?? "#4b5563")\"/>"
            s += "<text class=\"value\" x=\"\(labelWidth + max(w, 1) + 6)\" y=\"\(y + 14)\" font-size=\"12\">\(item.value)</text></g>"
        }
        return s + "</svg></figure>"
    }
}
