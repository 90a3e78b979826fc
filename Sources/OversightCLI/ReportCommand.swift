import Identifiers
import ArgumentParser
import Assessment
import AuditStore
import Coordinator
import Foundation
import Reporting
import Console
import Wire

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a batch's report to publish: one self-contained HTML (or PDF) file.",
        discussion: """
            The batch at a glance (records by settled verdict, worst case, technology and operator region, as charts with their numbers), the rules that fired most with their citations, the open questions that would settle the most records, how many facts came from the records' text, how verdicts moved since earlier assessments, rejections and dead letters, the criteria set and its hashes, the seal (the report runs `audit verify` and says whether it passed, as which login), and an index of records with each one's explanation. The file loads nothing from elsewhere: charts are drawn into it as SVG, and it runs no script.

            A batch of more than --full-index records lists and explains only the records that are, or could be, prohibited or high-risk (at most --full-index of them); every record is then in a CSV file beside the report (FILE.records.csv), and the report says so.

            --format pdf prints the same page with headless Chromium (Debian's `chromium` package).

            Example:
              oversight report 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 --out atlas.html \\
                  --database postgresql://localhost/oversight
              oversight report 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 --out atlas.pdf --format pdf
            """)

    @Argument(help: "Batch id.") var batch: String
    @Option(help: ArgumentHelp("Where to write the report.", valueName: "file")) var out: String
    @Option(help: "html (default) or pdf (printed with headless Chromium).") var format = "html"
    @Option(name: .customLong("full-index"), help: "The most records the report lists and explains itself.") var fullIndex = 1_000
    @Option(name: .customLong("wait-for-summary"),
            help: ArgumentHelp("How long to wait, at most, for the coordinator to summarise and list a large completed batch (its record lists are slow until then; a minute or two after a million records complete). 0: do not wait.", valueName: "seconds"))
    var waitForSummary = 600
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard BatchID(batch) != nil else { throw ValidationError("batch id must be a UUID, got \"\(batch)\"") }
        guard ["html", "pdf"].contains(format) else { throw ValidationError("unknown --format \"\(format)\"; use html or pdf") }
        guard fullIndex > 0 else { throw ValidationError("--full-index must be at least 1") }
        guard waitForSummary >= 0 else { throw ValidationError("--wait-for-summary must be 0 or more seconds") }
    }

    func run() throws {
        try runOrExit {
            var chromium: String?
            if format == "pdf" {
                chromium = Self.chromium()
                guard chromium != nil else {
                    throw CommandFailure("--format pdf prints the report with headless Chromium, which is not installed; install it (Debian: apt-get install chromium) or write --format html and print that")
                }
            }
            let id = BatchID(batch)!
            let store = try database.store(applicationName: "oversight-report", reading: true)
            let started = Date()
            let csvStore = try database.store(applicationName: "oversight-report-csv", reading: true)
            let made = try Self.collect(store, batchID: id, fullIndex: fullIndex, csvPath: out + ".records.csv", csvStore: csvStore,
                                        waitForSummary: TimeInterval(waitForSummary)) { step in
                printError(String(format: "report: %@ (%.1f s)", step, Date().timeIntervalSince(started)))
            }
            let html = made.report.html
            if let chromium {
                let page = out + ".html"
                try Self.write(html, to: page)
                try Self.printPDF(chromium: chromium, page: page, pdf: out)
                try? FileManager.default.removeItem(atPath: page)
            } else {
                try Self.write(html, to: out)
            }
            let seconds = Date().timeIntervalSince(started)
            printError(String(format: "report of batch %@ written to %@ (%@, %.1f s)", id.description, out, plural(made.report.batch.assessed, "assessment"), seconds))
            if made.wroteCSV { printError("every record is in \(out).records.csv; the report lists \(made.report.index.count) of them") }
            if let seal = made.report.seal, !seal.verified { printError("audit verify did not pass when the report was made: see its seal section") }
        }
    }

    static func write(_ text: String, to path: String) throws {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw CommandFailure("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// Chromium's binary, if one is installed.
    static func chromium() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") { return "\(dir)/\(name)" }
        }
        return nil
    }

    static func printPDF(chromium: String, page: String, pdf: String) throws {
        let profile = NSTemporaryDirectory() + "oversight-chromium-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let url = URL(fileURLWithPath: page).absoluteString
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer", "--user-data-dir=\(profile)",
                             "--print-to-pdf=\(pdf)", url]
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let said = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, FileManager.default.fileExists(atPath: pdf) else {
            let last = String(decoding: said, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
            throw CommandFailure("Chromium could not print the report (exit \(process.terminationStatus)): \(last)")
        }
    }

    struct Made {
        var report: BatchReport
        var wroteCSV: Bool
    }

    /// Reads everything the report shows through the store's reader queries, explains the
    /// records it lists (each checked against its stored result) and runs the seal check.
    /// `progress` hears each step as it starts (long batches take a while to verify).
    /// `csvStore`: a second connection, on which the records file of a large batch is written
    /// while `audit verify` runs on the first (each took a core's worth of time on its own).
    /// `waitForSummary`: how long to wait, at most, for the coordinator to summarise and list
    /// a completed batch larger than `fullIndex` (until then its lists read every stored
    /// result's JSON, minutes for a million records); `audit verify` runs meanwhile.
    static func collect(_ store: AuditStore, batchID: BatchID, fullIndex: Int, csvPath: String?, csvStore: AuditStore? = nil,
                        waitForSummary: TimeInterval = 0, progress: ((String) -> Void)? = nil) throws -> Made {
        guard let summary = try store.batchSummaries(batchID: batchID).first, let criteria = try store.criteriaSet(batchID: batchID) else {
            throw CommandFailure("no batch \(batchID) in this database (or not visible to this login)")
        }
        let large = summary.assessed > Int64(fullIndex)
        let awaitListing = try large && summary.state == "completed" && waitForSummary > 0 && !store.isListed(batchID: batchID)
        var csvWriter: BackgroundCSV?
        func startCSV() {
            guard large, let csvPath, let csvStore else { return }
            progress?("writing every record to \((csvPath as NSString).lastPathComponent), beside the rest")
            csvWriter = BackgroundCSV(store: csvStore, batchID: batchID, path: csvPath)
        }
        func verify() throws -> BatchReport.Seal? {
            progress?("running audit verify over \(plural(summary.assessed, "assessment"))")
            return try sealCheck(store, batchID: batchID) { done, total in
                if done % 200_000 == 0 { progress?("audit verify: \(done) of \(total) rows checked") }
            }
        }
        var seal: BatchReport.Seal?
        if awaitListing {
            seal = try verify()
            try waitForListing(store, batchID: batchID, seconds: waitForSummary, progress: progress)
        }
        startCSV()
        let batch = BatchReport.Batch(id: summary.batchID.description, organisation: summary.organisation, name: summary.name, source: summary.source,
                                      state: summary.state, accepted: summary.accepted, rejected: summary.rejected, assessed: summary.assessed,
                                      deadLetters: summary.deadLetters, createdAt: summary.createdAt, completedAt: summary.completedAt,
                                      asOf: summary.asOf, reassessmentOf: summary.reassessmentOf)
        var report = BatchReport(batch: batch, generatedAt: ISO8601DateFormatter().string(from: Date()), criteria: criteria, engine: Engine.version)
        func counts(_ rows: [VerdictCount]) -> [BatchReport.Count] { rows.map { .init(key: $0.key, verdict: $0.verdict, worstCase: $0.worstCase, records: $0.records) } }
        report.verdicts = counts(try store.verdictCounts(batchID: batchID))
        report.bySystem = counts(try store.verdictCounts(batchID: batchID, by: .system))
        report.byRegion = counts(try store.verdictCounts(batchID: batchID, by: .region))
        report.byApplicability = counts(try store.verdictCounts(batchID: batchID, by: .applicability))
        report.rules = try store.topRules(batchID: batchID).map { .init(pack: $0.pack, rule: $0.rule, title: $0.title, citation: $0.citation, severity: $0.severity, rationale: $0.rationale, records: $0.records) }
        report.questions = try store.topQuestions(batchID: batchID).map { .init(field: $0.field, text: $0.question, records: $0.records, first: $0.first) }
        let evidence = try store.evidenceCounts(batchID: batchID)
        report.evidence = (evidence.recordsWithFacts, evidence.factsUsed, evidence.restingOnInferred)
        let moves = try store.supersessions(batchID: batchID)
        report.movesTotal = moves.count
        report.moves = moves.filter(\.moved).map { .init(recordID: $0.recordID, previousBatch: $0.previousBatch, movement: $0.movement, answers: $0.answers.summary) }
        report.rejections = try store.rejectionGroups(batchID: batchID).map { .init(field: $0.field, records: $0.records, firstLine: $0.firstLine, message: $0.message) }
        report.deadLetters = try store.deadLetters(batchID: batchID).map { .init(seq: $0.seq, line: $0.line, attempts: $0.attempts, lastError: $0.lastError, open: $0.open) }
        report.seal = awaitListing ? seal : try verify()
        progress?("listing and explaining the records of the index")

        // The index: every record of a batch that fits, else those that are or could be
        // prohibited or high-risk, with every record in a CSV beside it.
        var entries: [RecordIndexRow] = []
        var wroteCSV = false
        if summary.assessed <= Int64(fullIndex) {
            entries = try store.records(batchID: batchID, limit: fullIndex)
        } else {
            for verdict in ["prohibited", "high_risk"] where entries.count < fullIndex {
                entries += try store.records(batchID: batchID, filter: RecordFilter(verdict: verdict), limit: fullIndex - entries.count)
            }
            for worst in ["prohibited", "high_risk"] where entries.count < fullIndex {
                let more = try store.records(batchID: batchID, filter: RecordFilter(worstCase: worst), limit: fullIndex)
                let seen = Set(entries.map(\.seq))
                entries += more.filter { !seen.contains($0.seq) }.prefix(fullIndex - entries.count)
            }
            if let csvWriter {
                try csvWriter.wait()
                wroteCSV = true
            } else if let csvPath {
                progress?("writing every record to \((csvPath as NSString).lastPathComponent)")
                try writeCSV(store, batchID: batchID, to: csvPath)
                wroteCSV = true
            }
            let name = csvPath.map { ($0 as NSString).lastPathComponent } ?? "a CSV file"
            report.indexNote = "This batch has \(summary.assessed) assessed records, more than one page lists: the index below lists and explains \(entries.count) records that are, or could be, prohibited or high-risk (at most \(fullIndex)). Every record, with its settled verdict, worst case and first question, is in \(name) beside this report."
        }
        for row in entries {
            let text: String
            if let stored = try store.storedResult(batchID: batchID, seq: row.seq) {
                text = StoredExplanation.make(stored, criteria: criteria).text
            } else {
                text = "The stored assessment of seq \(row.seq) could not be read."
            }
            report.index.append(.init(seq: row.seq, recordID: row.recordID, operatorName: row.operatorName, region: [row.region, row.country].compactMap { $0 }.first,
                                      system: row.system, verdict: row.verdict, worstCase: row.worstCase, applies: row.applies,
                                      firstQuestion: row.firstQuestion, explanation: text))
        }
        return Made(report: report, wroteCSV: wroteCSV)
    }

    /// Waits until the batch's summary is listed, at most `seconds`; says so when it gives up
    /// (the report is then made from the live views, only slower).
    static func waitForListing(_ store: AuditStore, batchID: BatchID, seconds: TimeInterval, progress: ((String) -> Void)?) throws {
        guard try !store.isListed(batchID: batchID) else { return }
        progress?("waiting for the coordinator to summarise and list the batch's records (a minute or two after a million records complete; at most \(Int(seconds)) s, --wait-for-summary)")
        let deadline = Date().addingTimeInterval(seconds)
        var nextLine = Date().addingTimeInterval(30)
        while try !store.isListed(batchID: batchID) {
            if Date() >= deadline {
                progress?("the batch's records are not listed after \(Int(seconds)) s (is its coordinator running?); reading the live views, which is slower")
                return
            }
            if Date() >= nextLine {
                progress?(try store.isSummarised(batchID: batchID) ? "still waiting: the batch is summarised, its records are being listed"
                                                                   : "still waiting: the batch is not summarised yet")
                nextLine = Date().addingTimeInterval(30)
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
    }

    /// The newest seal and whether `audit verify` passes now, as the login the report uses.
    static func sealCheck(_ store: AuditStore, batchID: BatchID, progress: ((Int64, Int64) -> Void)? = nil) throws -> BatchReport.Seal? {
        let login = (try? store.currentLogin()) ?? "unknown"
        let outcome: VerificationReport?
        do { outcome = try store.verify(batchID: batchID, trustedKey: nil, progress: progress) } catch {
            // A reader login sees the views, not the tables the check reads: say so, do not fail the report.
            guard let newest = try? store.sealsVisible(batchID: batchID).last else { return nil }
            return BatchReport.Seal(number: newest.seal, merkleRoot: newest.merkleRoot, keyFingerprint: keyFingerprint(newest.signingKey),
                                    sealedAt: newest.sealedAt, assessments: newest.assessments, verified: false,
                                    verification: "audit verify could not run as login \(login): \(AuditStore.userMessage(error) ?? String(describing: error)). Run `oversight audit verify \(batchID)` as a login that owns the audit tables.",
                                    login: login)
        }
        guard let outcome, let seal = outcome.seal else { return nil }
        var lines = outcome.problems.map(\.description)
        if outcome.ok {
            lines.append("verified: \(outcome.rows) assessments recomputed; every row hash, the Merkle root and the signature match, and every accepted job is covered")
        }
        return BatchReport.Seal(number: seal.seal, merkleRoot: seal.merkleRoot.hexString, keyFingerprint: keyFingerprint(seal.signingKey),
                                sealedAt: seal.sealedAt, assessments: seal.assessments, verified: outcome.ok,
                                verification: lines.joined(separator: "\n"), login: login)
    }

    /// The records file written on a thread of its own, with a connection of its own.
    final class BackgroundCSV: @unchecked Sendable {
        // The thread alone uses `store`, and writes `failure` before it signals; `wait` reads
        // it after.
        private let store: AuditStore
        private var failure: (any Error)?
        private let done = DispatchSemaphore(value: 0)

        init(store: AuditStore, batchID: BatchID, path: String) {
            self.store = store
            Thread { [self] in
                do { try ReportCommand.writeCSV(self.store, batchID: batchID, to: path) } catch { failure = error }
                done.signal()
            }.start()
        }

        func wait() throws {
            done.wait()
            if let failure { throw failure }
        }
    }

    static func writeCSV(_ store: AuditStore, batchID: BatchID, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CommandFailure("cannot write \(path)")
        }
        defer { try? handle.close() }
        handle.write(Data("seq,record_id,operator,region,country,system,verdict,worst_case,applies,rests_on,first_question\n".utf8))
        var last: Int64 = 0
        while true {
            let page = try store.records(batchID: batchID, limit: 10_000, after: last)
            if page.isEmpty { break }
            var text = ""
            for r in page {
                let fields = [String(r.seq), r.recordID ?? "", r.operatorName ?? "", r.region ?? "", r.country ?? "", r.system ?? "",
                              r.verdict, r.worstCase ?? "", r.applies, r.restsOn, r.firstQuestion ?? ""]
                text += fields.map(CSVField.quote).joined(separator: ",") + "\n"
            }
            handle.write(Data(text.utf8))
            last = page.last!.seq
        }
    }
}
