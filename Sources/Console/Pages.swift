import Identifiers
import Assessment
import AuditStore
import Foundation
import Reporting

/// The console's pages, rendered from typed rows: every piece of record text goes through
/// `HTMLWriter`, which escapes it; no page has a script.
enum Pages {
    static func page(_ title: String, refresh: Bool = false, _ body: (inout HTMLWriter) -> Void) -> String {
        var h = HTMLWriter()
        h.raw("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>")
        if refresh { h.raw("<meta http-equiv=\"refresh\" content=\"3\"/>") }
        h.raw("<link rel=\"stylesheet\" href=\"/static/console.css\"/>")
        h.element("title", "\(title) — Oversight")
        h.raw("</head><body><nav><a href=\"/batches\">Oversight</a> · read-only console</nav><main>")
        body(&h)
        h.raw("</main><footer>Not legal advice: assessments of the facts stated against the packs' reading of the law.</footer></body></html>\n")
        return h.out
    }

    static func link(_ h: inout HTMLWriter, _ href: String, _ text: String) {
        h.raw("<a href=\"\(HTMLWriter.escape(href))\">"); h.text(text); h.raw("</a>")
    }

    static func query(_ items: [(String, String?)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let parts = items.compactMap { name, value in value.map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" } }
        return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
    }

    static func verdictText(_ verdict: String, _ worst: String?) -> String { BatchReport.verdictText(verdict, worst) }

    static func error(_ code: Int, _ message: String) -> String {
        page("Error \(code)") { h in h.element("h1", "Error \(code)"); h.element("p", message) }
    }

    // MARK: Batches

    static func batches(_ rows: [ConsoleServer.BatchRow], login: String) -> String {
        let live = rows.contains { $0.batch.state == "running" || $0.batch.state == "receiving" }
        return page("Batches", refresh: live) { h in
            h.element("h1", "Batches")
            h.element("p", "As login \(login): the batches of its organisation. \(live ? "Running batches update every 3 seconds." : "")")
            h.raw("<table id=\"batches\"><tr><th>batch</th><th>name</th><th>organisation</th><th>state</th><th>progress</th><th class=\"num\">accepted</th><th class=\"num\">rejected</th><th class=\"num\">assessed</th><th class=\"num\">dead letters</th><th>rate</th><th>ETA</th></tr>")
            for row in rows {
                let b = row.batch
                let done = b.assessed + b.deadLetters
                let percent = b.accepted > 0 ? Int(Double(done) / Double(b.accepted) * 100) : 0
                h.raw("<tr data-batch=\"\(HTMLWriter.escape(b.batchID.description))\"><td>"); link(&h, "/batches/\(b.batchID)", String(b.batchID.description.prefix(8))); h.raw("</td>")
                h.cell(b.name); h.cell(b.organisation); h.cell(b.state + (b.sealedAt == nil ? "" : ", sealed"))
                h.raw("<td><progress max=\"100\" value=\"\(percent)\">\(percent)%</progress> \(percent)%</td>")
                for n in [b.accepted, b.rejected, b.assessed, b.deadLetters] { h.cell(String(n), class: "num") }
                h.cell(row.rate.map { String(format: "%.0f/s", $0) } ?? "—")
                h.cell(row.etaSeconds.map { $0 < 1 ? "<1 s" : String(format: "%.0f s", $0) } ?? "—")
                h.raw("</tr>")
            }
            h.raw("</table>")
            if rows.isEmpty { h.element("p", "No batch is visible to this login.") }
        }
    }

    static func header(_ h: inout HTMLWriter, _ b: BatchSummary, _ section: String) {
        h.raw("<p class=\"crumbs\">"); link(&h, "/batches", "Batches"); h.text(" / "); link(&h, "/batches/\(b.batchID)", b.name)
        h.text(" / \(section)"); h.raw("</p>")
        h.raw("<p class=\"tabs\">")
        for (path, label) in [("", "overview"), ("/records", "records"), ("/deadletters", "dead letters (\(b.deadLetters))"),
                              ("/rejections", "rejections (\(b.rejected))"), ("/seal", "seal")] {
            link(&h, "/batches/\(b.batchID)\(path)", label); h.text("  ")
        }
        h.raw("</p>")
    }

    static func batch(_ o: ConsoleServer.Overview) -> String {
        let b = o.batch
        return page(b.name, refresh: b.state == "running" || b.state == "receiving") { h in
            header(&h, b, "overview")
            h.element("h1", b.name)
            h.element("p", "Batch \(b.batchID) of \(b.organisation), from \(b.source): \(b.state); \(b.accepted) accepted, \(b.rejected) rejected, \(b.assessed) assessed, \(b.deadLetters) dead letters. Packs: \(b.packs.joined(separator: ", ")); the law as of \(b.asOf ?? "—").")
            let counts = o.verdicts.map { BatchReport.Count(key: $0.key, verdict: $0.verdict, worstCase: $0.worstCase, records: $0.records) }
            func totals(_ value: (BatchReport.Count) -> String?) -> [(label: String, value: Int64)] { BatchReport.totals(counts, by: value) }
            h.raw("<div class=\"charts\">")
            h.raw(SVGChart.bars(id: "settled", title: "Records by settled verdict", items: totals { $0.verdict }, colours: BatchReport.colours))
            h.raw(SVGChart.bars(id: "worst", title: "Records by worst case", items: totals { $0.worstCase }, colours: BatchReport.colours))
            var systems: [String: Int64] = [:]
            for c in o.bySystem { systems[c.key, default: 0] += c.records }
            h.raw(SVGChart.bars(id: "systems", title: "By technology or system type",
                                items: systems.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(20).map { ($0.key, $0.value) }, colours: [:]))
            h.raw("</div>")
            h.element("h2", "Find records")
            h.raw("<form method=\"get\" action=\"/batches/\(HTMLWriter.escape(b.batchID.description))/records\">")
            for (name, label, options) in [("verdict", "settled verdict", ["prohibited", "high_risk", "elevated", "limited", "minimal"]),
                                           ("worst_case", "worst case", ["prohibited", "high_risk", "elevated", "limited", "minimal"]),
                                           ("system", "system", systems.keys.sorted())] {
                h.raw("<label>"); h.text(label); h.raw(" <select name=\"\(name)\"><option value=\"\">any</option>")
                for option in options { h.raw("<option value=\"\(HTMLWriter.escape(option))\">"); h.text(option); h.raw("</option>") }
                h.raw("</select></label> ")
            }
            h.raw("<label>rule <input name=\"rule\" size=\"16\"/></label> <label>operator <input name=\"operator\" size=\"20\"/></label> ")
            h.raw("<label>region <input name=\"region\" size=\"4\"/></label> <label>text <input name=\"q\" size=\"16\"/></label> <button type=\"submit\">List</button></form>")
            h.element("h2", "Settled verdict and worst case")
            h.raw("<table id=\"verdicts\"><tr><th>settled — worst case</th><th class=\"num\">records</th></tr>")
            for c in o.verdicts {
                h.raw("<tr><td>"); link(&h, "/batches/\(b.batchID)/records" + query([("verdict", c.verdict), ("worst_case", c.worstCase)]), verdictText(c.verdict, c.worstCase))
                h.raw("</td>"); h.cell(String(c.records), class: "num"); h.raw("</tr>")
            }
            h.raw("</table>")
            h.element("h2", "The rules that fired most")
            h.raw("<table id=\"rules\"><tr><th>rule</th><th>citation</th><th>severity</th><th class=\"num\">records</th></tr>")
            for r in o.topRules {
                h.raw("<tr><td>"); link(&h, "/batches/\(b.batchID)/records" + query([("rule", r.rule)]), r.title); h.raw("<br/><code>"); h.text("\(r.pack) / \(r.rule)")
                h.raw("</code></td>"); h.cell(r.citation); h.cell(r.severity); h.cell(String(r.records), class: "num"); h.raw("</tr>")
            }
            h.raw("</table>")
            h.element("h2", "Open questions asked of the most records")
            h.raw("<table id=\"questions\"><tr><th>question</th><th>fact</th><th class=\"num\">records</th><th class=\"num\">first</th></tr>")
            for q in o.topQuestions {
                h.raw("<tr>"); h.cell(q.question); h.raw("<td><code>"); h.text(q.field); h.raw("</code></td>")
                h.cell(String(q.records), class: "num"); h.cell(String(q.first), class: "num"); h.raw("</tr>")
            }
            h.raw("</table>")
            h.element("p", "\(o.evidence.recordsWithFacts) records carry facts read from their text (\(o.evidence.factsUsed) counted); \(o.evidence.restingOnInferred) verdicts rest on them alone.")
        }
    }

    // MARK: Records

    static func records(_ b: BatchSummary, _ rows: [RecordIndexRow], filter: RecordFilter, page: Int) -> String {
        Pages.page("Records of \(b.name)") { h in
            header(&h, b, "records")
            h.element("h1", "Records")
            let shown = [("settled verdict", filter.verdict), ("worst case", filter.worstCase), ("system", filter.system), ("rule", filter.rule),
                         ("operator", filter.operatorName), ("region", filter.region), ("text", filter.text)].compactMap { name, v in v.map { "\(name) \($0)" } }
            h.element("p", shown.isEmpty ? "All records, page \(page)." : "Filtered by \(shown.joined(separator: ", ")); page \(page).")
            h.raw("<table id=\"records\"><tr><th>seq</th><th>record</th><th>operator</th><th>region</th><th>system</th><th>settled — worst case</th><th>law</th><th>first question</th></tr>")
            for r in rows {
                h.raw("<tr data-seq=\"\(r.seq)\">"); h.cell(String(r.seq), class: "num"); h.raw("<td>")
                link(&h, "/batches/\(b.batchID)/records/\(r.seq)", r.recordID ?? "seq \(r.seq)"); h.raw("</td>")
                h.cell(r.operatorName ?? ""); h.cell([r.country, r.region].compactMap { $0 }.joined(separator: " / ")); h.cell(r.system ?? "")
                h.raw("<td class=\"v-\(HTMLWriter.escape(r.verdict))\">"); h.text(verdictText(r.verdict, r.worstCase)); h.raw("</td>")
                h.cell(r.applies == "binding" ? "binds" : r.applies == "benchmark" ? "benchmark" : "depends on the country"); h.cell(r.firstQuestion ?? "")
                h.raw("</tr>")
            }
            h.raw("</table>")
            if rows.isEmpty { h.element("p", "No record matches.") }
            let base: [(String, String?)] = [("verdict", filter.verdict), ("worst_case", filter.worstCase), ("system", filter.system), ("rule", filter.rule),
                                             ("operator", filter.operatorName), ("region", filter.region), ("q", filter.text)]
            h.raw("<p class=\"pages\">")
            if page > 1 { link(&h, "/batches/\(b.batchID)/records" + query(base + [("page", String(page - 1))]), "← previous"); h.text("  ") }
            if rows.count == ConsoleServer.perPage { link(&h, "/batches/\(b.batchID)/records" + query(base + [("page", String(page + 1))]), "next →") }
            h.raw("</p>")
        }
    }

    /// The record's text with the spans its inferred facts rest on marked.
    static func marked(_ h: inout HTMLWriter, _ text: String, spans: [String]) {
        var ranges: [Range<String.Index>] = []
        for span in spans where !span.isEmpty {
            if let r = text.range(of: span), !ranges.contains(where: { $0.overlaps(r) }) { ranges.append(r) }
        }
        var at = text.startIndex
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            h.text(String(text[at..<r.lowerBound])); h.raw("<mark>"); h.text(String(text[r])); h.raw("</mark>")
            at = r.upperBound
        }
        h.text(String(text[at...]))
    }

    static func record(_ b: BatchSummary, _ view: ConsoleServer.RecordView) -> String {
        let stored = view.explanation.stored
        let record = view.explanation.record
        return page("\(stored.recordID ?? "seq \(stored.seq)") in \(b.name)") { h in
            header(&h, b, "record \(stored.recordID ?? String(stored.seq))")
            h.element("h1", "Record \(stored.recordID ?? "seq \(stored.seq)")")
            h.element("h2", "Explanation")
            h.raw("<pre id=\"explanation\">"); h.text(view.explanation.text); h.raw("</pre>")
            // The facts read from the text, each span shown where it is.
            var facts: [(field: String, value: String, span: String, source: String, strength: String)] = []
            if case .array(let items)? = record["inferred"] {
                for item in items {
                    facts.append((item["field"]?.stringValue ?? "", item["value"]?.canonicalString ?? "", item["span"]?.stringValue ?? "",
                                  item["source"]?.stringValue ?? "", item["strength"]?.stringValue ?? ""))
                }
            }
            h.element("h2", "Evidence read from the record's text")
            if facts.isEmpty { h.element("p", "None: every fact is declared.") }
            else {
                for source in Set(facts.map(\.source)).sorted() where !source.hasPrefix("register:") {
                    var text: JSONValue? = record
                    for key in source.split(separator: ".") { text = text?[String(key)] }
                    guard let value = text?.stringValue else { continue }
                    h.raw("<p class=\"source\"><b>"); h.text(source); h.raw("</b>: ")
                    marked(&h, value, spans: facts.filter { $0.source == source }.map(\.span)); h.raw("</p>")
                }
                h.raw("<table id=\"evidence\"><tr><th>fact</th><th>value</th><th>strength</th><th>source</th><th>span</th></tr>")
                for f in facts {
                    h.raw("<tr><td><code>"); h.text(f.field); h.raw("</code></td>"); h.cell(f.value); h.cell(f.strength); h.cell(f.source); h.raw("<td><q>"); h.text(f.span); h.raw("</q></td></tr>")
                }
                h.raw("</table>")
            }
            h.element("h2", "Input as submitted")
            h.raw("<pre id=\"input\">"); h.text(String(decoding: stored.record, as: UTF8.self)); h.raw("</pre>")
            h.element("h2", "Hashes")
            h.raw("<table id=\"hashes\">")
            for (k, v) in [("input SHA-256", stored.inputSHA256.hexString), ("row SHA-256", stored.rowSHA256.hexString),
                           ("criteria set SHA-256", stored.criteriaSHA256.hexString), ("engine", stored.engine),
                           ("stored result re-derived byte for byte", view.explanation.matches ? "yes" : "no")] {
                h.raw("<tr><th>"); h.text(k); h.raw("</th><td><code>"); h.text(v); h.raw("</code></td></tr>")
            }
            h.raw("</table>")
            h.raw("<p>"); link(&h, "/api/batches/\(b.batchID)/records/\(stored.seq)", "this record as JSON"); h.raw("</p>")
        }
    }

    // MARK: Dead letters, rejections, seal

    static func deadLetters(_ b: BatchSummary, _ rows: [DeadLetterRow]) -> String {
        page("Dead letters of \(b.name)") { h in
            header(&h, b, "dead letters")
            h.element("h1", "Dead letters")
            if rows.isEmpty { h.element("p", "No job of this batch was given up."); return }
            for d in rows {
                h.raw("<section class=\"dead\" data-seq=\"\(d.seq)\">")
                h.element("h3", "seq \(d.seq)\(d.line.map { ", line \($0)" } ?? ""): \(d.attempts) attempts\(d.open ? "" : " (retried or assessed since)")")
                h.element("p", d.lastError)
                h.raw("<table><tr><th>attempt</th><th>worker</th><th>error</th><th>at</th></tr>")
                for a in d.failures {
                    h.raw("<tr>"); h.cell(String(a.attempt), class: "num"); h.cell(a.worker); h.cell(a.reason); h.cell(a.failedAt); h.raw("</tr>")
                }
                h.raw("</table></section>")
            }
        }
    }

    static func rejections(_ b: BatchSummary, _ rows: [RejectionRow], page: Int) -> String {
        Pages.page("Rejections of \(b.name)") { h in
            header(&h, b, "rejections")
            h.element("h1", "Rejected lines")
            if rows.isEmpty { h.element("p", page == 1 ? "No line of the file was rejected." : "No more."); return }
            h.raw("<table id=\"rejections\"><tr><th>line</th><th>field</th><th>what was wrong</th><th>the line as submitted</th></tr>")
            for r in rows {
                h.raw("<tr>"); h.cell(String(r.line), class: "num"); h.cell(r.field); h.cell(r.message); h.raw("<td><code>"); h.text(String(r.raw.prefix(300))); h.raw("</code></td></tr>")
            }
            h.raw("</table>")
            if rows.count == 100 { h.raw("<p>"); link(&h, "/batches/\(b.batchID)/rejections?page=\(page + 1)", "next →"); h.raw("</p>") }
        }
    }

    static func seal(_ b: BatchSummary, _ s: ConsoleServer.SealView) -> String {
        page("Seal of \(b.name)") { h in
            header(&h, b, "seal")
            h.element("h1", "Seal")
            if s.seals.isEmpty { h.element("p", s.verification); return }
            h.raw("<table id=\"seals\"><tr><th>seal</th><th>Merkle root</th><th>signer's key fingerprint</th><th>sealed</th><th class=\"num\">assessments</th></tr>")
            for z in s.seals {
                h.raw("<tr>"); h.cell(String(z.seal), class: "num"); h.raw("<td><code>"); h.text(z.merkleRoot); h.raw("</code></td><td><code>")
                h.text(z.signerKeyFingerprint); h.raw("</code></td>"); h.cell(z.sealedAt); h.cell(String(z.assessments), class: "num"); h.raw("</tr>")
            }
            h.raw("</table>")
            h.element("h2", "audit verify, as login \(s.login)")
            h.element("p", s.verified == true ? "Passed." : s.verified == false ? "FAILED." : "Not run.")
            h.raw("<pre id=\"verification\">"); h.text(s.verification); h.raw("</pre>")
        }
    }

    static let css = """
        body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#111}nav{background:#1f2937;color:#fff;padding:.5em 1em}
        nav a{color:#fff;font-weight:600;text-decoration:none}main{max-width:80em;margin:1em auto;padding:0 1em}
        footer{color:#555;font-size:.85em;padding:1em;text-align:center}table{border-collapse:collapse;margin:.5em 0}
        td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}.num{text-align:right}
        pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}.charts{display:flex;flex-wrap:wrap;gap:1em}
        mark{background:#fde68a}.v-prohibited{color:#8b0000;font-weight:600}.v-high_risk{color:#c2410c}
        .crumbs,.tabs{margin:.2em 0}code{word-break:break-all}form label{margin-right:.5em}
        """
}
