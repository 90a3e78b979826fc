import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import Assessment
import LibPQ
import TestSupport

/// What a report page holds, read back with an XML parser (the page is well-formed XHTML).
final class ReportPage: NSObject, XMLParserDelegate {
    /// Chart id → (label → value) of every bar.
    var bars: [String: [String: Int64]] = [:]
    var totals: [String: Int64] = [:]
    var scripts = 0, images = 0, elements = 0
    var text = ""
    private var chart: String?
    private var total: String?

    static func parse(_ path: String) throws -> ReportPage {
        let page = ReportPage()
        let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: path)))
        parser.delegate = page
        #expect(parser.parse(), "the report is well-formed: \(parser.parserError.map { String(describing: $0) } ?? "") at line \(parser.lineNumber)")
        return page
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        elements += 1
        if name == "script" { scripts += 1 }
        if name == "img" { images += 1 }
        if name == "svg", let id = attributes["id"] { chart = id }
        if name == "g", attributes["class"] == "bar", let chart, let label = attributes["data-label"], let value = attributes["data-value"].flatMap(Int64.init) {
            bars[chart, default: [:]][label] = value
        }
        if name == "span", let key = attributes["data-total"] { total = key }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "svg" { chart = nil }
        if name == "span" { total = nil }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
        if let total, let n = Int64(string.trimmingCharacters(in: .whitespaces)) { totals[total] = n }
    }
}

@Suite(.serialized) struct ReportTests {
    let samples = samplesDirectory

    func temporary(_ name: String, _ text: String) throws -> String { try temporaryFile(name, text) }

    static func batchID(_ stdout: String) -> String { stdout.split(separator: "\n").first.map(String.init) ?? "" }

    /// The Atlas sample's report: its numbers are the database's, its charts draw them, it
    /// parses, loads nothing and runs nothing; a batch larger than the index lists the records
    /// that are or could be prohibited or high-risk, and every record is in the CSV beside it.
    @Test func theReportOfTheAtlasBatchMatchesTheDatabase() throws {
        let system = try RunningSystem(workers: 1, label: "report")
        let submitted = try system.submit(samples + "/atlas-of-surveillance-sample.csv", ["--as-of", "2026-12-02"])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let batch = Self.batchID(submitted.stdout)
        let db = try PGConnection(system.conninfo)
        // The seal is made after the last commit: wait for it (a deadline, not a sleep).
        try eventually("the batch is sealed and summarised", within: 60, {
            try db.query("SELECT count(*) FROM oversight.current_summaries WHERE batch_id = \(batch)::uuid").int(0, 0)
        }, until: { $0 == 1 })
        // The coordinator summarised the completed batch after sealing it: pages read the summary.
        #expect(try db.query("SELECT assessments FROM oversight.current_summaries WHERE batch_id = \(batch)::uuid").int(0, 0) == 652)
        let out = NSTemporaryDirectory() + "ovs-report-\(UUID().uuidString).html"
        let made = try OversightBinary.runSplit(["report", batch, "--out", out, "--full-index", "100", "--database", system.conninfo])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stderr.contains("every record is in \(out).records.csv; the report lists 100 of them"), "\(made.stderr)")
        let page = try ReportPage.parse(out)
        #expect(page.scripts == 0 && page.images == 0 && page.elements > 1000)
        let html = try String(contentsOfFile: out, encoding: .utf8)
        #expect(html.contains("Content-Security-Policy") && html.contains("default-src 'none'"))
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("url("), "nothing is loaded from elsewhere")

        // Totals and charts against SQL.
        let progress = try db.query("SELECT accepted, rejected, assessed FROM oversight.batch_progress WHERE batch_id = \(batch)::uuid")
        #expect(page.totals["accepted"] == progress.int64(0, 0) && page.totals["rejected"] == progress.int64(0, 1) && page.totals["assessed"] == progress.int64(0, 2))
        for (chart, column) in [("chart-settled", "verdict"), ("chart-worst", "worst_case"), ("chart-applies", "applies")] {
            let rows = try db.query(PGQuery(stringLiteral: "SELECT \(column), count(*) FROM oversight.results WHERE batch_id = '\(batch)' GROUP BY 1"))
            var expected: [String: Int64] = [:]
            for i in 0..<rows.rowCount { expected[rows.string(i, 0)!] = rows.int64(i, 1)! }
            #expect(page.bars[chart] == expected, "\(chart): \(page.bars[chart] ?? [:]) against \(expected)")
        }
        let systems = try db.query("SELECT system, count(*) FROM oversight.record_index WHERE batch_id = \(batch)::uuid AND system IS NOT NULL GROUP BY 1")
        for i in 0..<systems.rowCount {
            #expect(page.bars["chart-systems"]?[systems.string(i, 0)!] == systems.int64(i, 1)!, "\(systems.string(i, 0)!)")
        }
        // The most-fired rule and the seal as the database has them.
        let top = try db.query("SELECT title, count(DISTINCT seq) FROM oversight.findings WHERE batch_id = \(batch)::uuid AND outcome = 'fired' GROUP BY pack, rule, title ORDER BY 2 DESC LIMIT 1")
        #expect(page.text.contains(top.string(0, 0)!))
        let seal = try db.query("SELECT seal, merkle_root FROM oversight.seals WHERE batch_id = \(batch)::uuid ORDER BY seal DESC LIMIT 1")
        #expect(page.text.contains(seal.string(0, 1)!) && page.text.contains("passed") && page.text.contains("checked as login"))
        // The index: 100 records, all of them prohibited or high-risk, or could be.
        let listed = try db.query("""
            SELECT count(*) FROM oversight.results WHERE batch_id = \(batch)::uuid AND (verdict IN ('prohibited', 'high_risk') OR worst_case IN ('prohibited', 'high_risk'))
            """).int(0, 0)!
        #expect(listed >= 100 && page.text.contains("lists and explains 100 records that are, or could be, prohibited or high-risk"))
        #expect(page.text.components(separatedBy: "identical byte for byte").count - 1 == 100, "every listed explanation is checked against its stored result")
        let csv = try String(contentsOfFile: out + ".records.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 653 && csv[0].hasPrefix("seq,record_id,operator"))

        // Summarised but not listed (the coordinator's second step still running): the report
        // waits for the listing, at most --wait-for-summary, and says so; then reads the live
        // views for the lists.
        try db.query("UPDATE oversight.batch_summaries SET listed = false WHERE batch_id = \(batch)::uuid")
        let waited = try OversightBinary.runSplit(["report", batch, "--out", out + ".waited.html", "--full-index", "100", "--wait-for-summary", "1",
                                                   "--database", system.conninfo])
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(waited.stderr.contains("waiting for the coordinator to summarise and list the batch's records")
                && waited.stderr.contains("not listed after 1 s"), "\(waited.stderr)")
        #expect(try ReportPage.parse(out + ".waited.html").bars == page.bars)

        // Without the summary the same numbers come from the live views.
        try db.query("DELETE FROM oversight.batch_summaries WHERE batch_id = \(batch)::uuid")
        let live = try OversightBinary.runSplit(["report", batch, "--out", out + ".live.html", "--full-index", "100", "--wait-for-summary", "0",
                                                 "--database", system.conninfo])
        #expect(live.status == 0, "\(live.stderr)")
        let livePage = try ReportPage.parse(out + ".live.html")
        for chart in ["chart-settled", "chart-worst", "chart-applies", "chart-systems", "chart-regions"] {
            #expect(livePage.bars[chart] == page.bars[chart] && page.bars[chart]?.isEmpty == false, "\(chart): live and summarised agree")
        }
        #expect(livePage.text.contains(top.string(0, 0)!))
        // The evidence line: the summary's counts, the live views' and SQL's are the same.
        let facts = try db.query("""
            SELECT count(*) FILTER (WHERE json_array_length(inferred) > 0), COALESCE(sum(json_array_length(inferred)), 0),
                   count(*) FILTER (WHERE rests_on = 'inferred')
            FROM oversight.results WHERE batch_id = \(batch)::uuid
            """)
        let line = "\(facts.int64(0, 0)!) records carry facts read from their own text or from the vendor register (\(facts.int64(0, 1)!) facts counted); \(facts.int64(0, 2)!) verdicts rest on such facts alone"
        #expect(facts.int64(0, 0)! > 0 && page.text.contains(line) && livePage.text.contains(line), "\(line)")

        // status BATCH counts by settled verdict and worst case, as the summary view does.
        let status = try JSONParser.parse(try OversightBinary.runSplit(["status", batch, "--json", "--database", system.conninfo]).stdout)
        guard case .array(let verdicts)? = status["verdicts"] else { Issue.record("no verdicts in status --json"); return }
        let summary = try db.query("SELECT count(*), sum(records) FROM oversight.assessment_summary WHERE batch_id = \(batch)::uuid")
        #expect(verdicts.count == summary.int(0, 0)! && verdicts.reduce(0) { $0 + ($1["records"]?.intValue ?? 0) } == 652)

        // A coordinator that starts finds the completed batch without a summary of its newest
        // seal (as after a crash while summarising, or a schema upgrade) and summarises it.
        _ = system.coordinator.stop()
        system.coordinator = try RunningProcess(["coordinator", "--database", system.conninfo, "--worker-endpoint", system.workerEndpoint,
                                                 "--client-endpoint", system.clientEndpoint, "--heartbeat-interval", "200"],
                                                logPath: system.directory + "/coordinator-2.log")
        try eventually("the restarted coordinator summarises the batch again", within: 60, {
            try db.query("SELECT assessments FROM oversight.current_summaries WHERE batch_id = \(batch)::uuid").int(0, 0)
        }, until: { $0 == 652 })
        #expect(system.coordinator.log.contains("summarising completed batches that have no summary of their newest seal"))

        // explain --batch: the stored assessment's own explanation, by id or by seq.
        let explained = try OversightBinary.runSplit(["explain", "--batch", batch, "--record", "AOS005208", "--database", system.conninfo])
        #expect(explained.status == 0 && explained.stdout.hasPrefix("Record AOS005208: ") && explained.stdout.contains("identical byte for byte"), "\(explained.stdout)\(explained.stderr)")
        let unknown = try OversightBinary.runSplit(["explain", "--batch", batch, "--record", "nope", "--database", system.conninfo])
        #expect(unknown.status == 1 && unknown.stderr.contains("has no assessed record with id nope"))
        _ = system.stop()
    }

    /// Record text from the outside world is text in the report: markup in an id, a summary or
    /// an operator's name is escaped, and the page runs no script; a repeated id asks for --seq;
    /// the PDF is printed by Chromium.
    @Test func recordTextIsEscapedAndThePDFIsPrinted() throws {
        let system = try RunningSystem(workers: 1, label: "hostile-report")
        let hostile = [
            #"{"id":"<script>alert(1)</script>","summary":"\"><img src=x onerror=alert(2)>","operator":{"name":"<b onmouseover=alert(3)>Police</b>","country":"US"},"system":{"type":"facial_recognition","vendor":"A & B <i>"}}"#,
            #"{"id":"twice","system":{"type":"alpr"}}"#,
            #"{"id":"twice","system":{"type":"alpr"},"operator":{"name":"]]><script>alert(4)</script>"}}"#,
        ]
        let file = try temporary("hostile.jsonl", hostile.joined(separator: "\n") + "\n")
        let submitted = try system.submit(file)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let batch = Self.batchID(submitted.stdout)
        let out = NSTemporaryDirectory() + "ovs-hostile-\(UUID().uuidString).html"
        let made = try OversightBinary.runSplit(["report", batch, "--out", out, "--database", system.conninfo])
        #expect(made.status == 0, "\(made.stderr)")
        let html = try String(contentsOfFile: out, encoding: .utf8)
        for raw in ["<script>alert", "<img src=x", "<b onmouseover", "]]><script"] { #expect(!html.contains(raw), "\(raw) is escaped") }
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && html.contains("&lt;b onmouseover=alert(3)&gt;Police&lt;/b&gt;"))
        let page = try ReportPage.parse(out)
        #expect(page.scripts == 0 && page.images == 0)
        #expect(page.text.contains("<script>alert(1)</script>"), "the text itself is shown, as text")

        let twice = try OversightBinary.runSplit(["explain", "--batch", batch, "--record", "twice", "--database", system.conninfo])
        #expect(twice.status == 1 && twice.stderr.contains("record id twice occurs 2 times in batch") && twice.stderr.contains("give --seq N"), "\(twice.stderr)")
        let bySeq = try OversightBinary.runSplit(["explain", "--batch", batch, "--seq", "3", "--database", system.conninfo])
        #expect(bySeq.status == 0 && bySeq.stdout.hasPrefix("Record twice: "), "\(bySeq.stderr)")

        let pdf = NSTemporaryDirectory() + "ovs-hostile-\(UUID().uuidString).pdf"
        let printed = try OversightBinary.runSplit(["report", batch, "--out", pdf, "--format", "pdf", "--database", system.conninfo], timeout: 120)
        #expect(printed.status == 0, "\(printed.stderr)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: pdf))
        #expect(bytes.count > 1000 && bytes.prefix(5) == Data("%PDF-".utf8))
        _ = system.stop()
    }
}
