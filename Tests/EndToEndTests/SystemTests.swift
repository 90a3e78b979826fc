import Foundation
import Testing
import Assessment
import LibPQ
import TestSupport

/// A coordinator and workers of the built binary, as separate processes, on a fresh database.
final class RunningSystem {
    let conninfo: String
    let workerEndpoint: String
    let clientEndpoint: String
    let directory: String
    var coordinator: RunningProcess!
    var workers: [RunningProcess] = []

    /// `extra`: options given to the coordinator and every worker (`--log-format json`, say).
    init(workers count: Int, label: String, extra: [String] = []) throws {
        conninfo = try TestDatabase.create(label)
        let wp = freeLoopbackPort(), cp = freeLoopbackPort()
        workerEndpoint = "tcp://127.0.0.1:\(wp)"
        clientEndpoint = "tcp://127.0.0.1:\(cp)"
        directory = NSTemporaryDirectory() + "oversight-e2e-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        coordinator = try RunningProcess(["coordinator", "--database", conninfo, "--worker-endpoint", workerEndpoint,
                                          "--client-endpoint", clientEndpoint, "--heartbeat-interval", "200"] + extra,
                                         logPath: directory + "/coordinator.log")
        try coordinator.waitForLog("coordinator listening")
        for n in 1...count {
            workers.append(try RunningProcess(["worker", "--coordinator", workerEndpoint, "--database", conninfo,
                                               "--name", "e2e-\(n)", "--heartbeat-interval", "200"] + extra,
                                              logPath: directory + "/worker-\(n).log"))
        }
    }

    func submit(_ file: String, _ extra: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
        try OversightBinary.runSplit(["submit", file, "--coordinator", clientEndpoint, "--wait"] + extra, timeout: 180)
    }

    func stop() -> [Int32] {
        workers.map { $0.stop() } + [coordinator.stop()]
    }

    var logs: String {
        ([coordinator] + workers).map { "--- \($0.logPath)\n\($0.log)" }.joined(separator: "\n")
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

enum ResultsShape {
    static func findings(_ pack: JSONValue) -> [JSONValue] {
        if case .array(let list)? = pack["findings"] { return list }
        return []
    }
}

@Suite(.serialized) struct SystemTests {
    /// 10,000 generated records and three bad lines through coordinator, two workers and PostgreSQL:
    /// exactly one assessment per accepted record, and every bad line in rejected_records.
    @Test func tenThousandRecordsEndToEnd() throws {
        let system = try RunningSystem(workers: 2, label: "e2e")
        var text = ""
        for record in SyntheticDeployments(count: 10_000, seed: 3) { text += record.canonicalString + "\n" }
        text += "{not json\n"
        text += #"{"system":{"type":"toaster"}}"# + "\n"
        text += #"{"operator":{"nmae":"typo"}}"# + "\n"
        let file = system.directory + "/batch.jsonl"
        try text.write(toFile: file, atomically: true, encoding: .utf8)

        let result = try system.submit(file)
        #expect(result.status == 0, "\(result.stderr)\n\(system.logs)")
        let batch = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(result.stderr.contains("batch.jsonl:10001:"), "line of the malformed record")
        #expect(result.stderr.contains("batch.jsonl:10002: field \"system.type\""))
        #expect(result.stderr.contains("batch.jsonl:10003: field \"operator.nmae\""))
        #expect(result.stderr.contains("completed: 10000 assessed, 0 failed, 3 rejected"))

        let db = try PGConnection(system.conninfo)
        let counts = try db.query("""
            SELECT (SELECT count(*) FROM oversight.jobs WHERE batch_id = \(batch)::uuid),
                   (SELECT count(*) FROM oversight.assessments WHERE batch_id = \(batch)::uuid),
                   (SELECT count(DISTINCT seq) FROM oversight.assessments WHERE batch_id = \(batch)::uuid),
                   (SELECT count(*) FROM oversight.jobs j WHERE batch_id = \(batch)::uuid AND NOT EXISTS
                        (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = j.batch_id AND a.seq = j.seq)),
                   (SELECT count(*) FROM oversight.rejected_records WHERE batch_id = \(batch)::uuid),
                   (SELECT state FROM oversight.batch_progress WHERE batch_id = \(batch)::uuid),
                   (SELECT count(DISTINCT worker) FROM oversight.assessments WHERE batch_id = \(batch)::uuid)
            """)
        #expect(counts.int(0, 0) == 10_000)
        #expect(counts.int(0, 1) == 10_000)
        #expect(counts.int(0, 2) == 10_000)
        #expect(counts.int(0, 3) == 0)
        #expect(counts.int(0, 4) == 3)
        #expect(counts.string(0, 5) == "completed")
        #expect(counts.int(0, 6) == 2, "both workers took part")

        // The stored verdicts are the engine's: recompute a sample in-process.
        let criteria = CriteriaSet.builtIn
        let rows = try db.query("""
            SELECT j.record, a.verdict, a.result::text, to_char(b.as_of, 'YYYY-MM-DD')
            FROM oversight.jobs j JOIN oversight.assessments a USING (batch_id, seq) JOIN oversight.batches b USING (batch_id)
            WHERE j.batch_id = \(batch)::uuid AND j.seq % 500 = 0
            """)
        #expect(rows.rowCount == 20)
        for i in 0..<rows.rowCount {
            let expected = criteria.assess(try JSONParser.parse(rows.string(i, 0)!), asOf: try #require(CalendarDate(rows.string(i, 3) ?? "")))
            #expect(rows.string(i, 1) == expected.verdict.rawValue)
            #expect(try JSONParser.parse(rows.string(i, 2)!).canonicalString == expected.canonicalJSON.canonicalString)
        }

        let status = try OversightBinary.runSplit(["status", batch, "--json", "--database", system.conninfo])
        #expect(status.status == 0)
        let json = try JSONParser.parse(status.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(json["assessed"] == .number(10_000))
        #expect(json["state"] == .string("completed"))
        #expect(json["organisation"] == .string("local"), "a loopback client without a key")
        #expect(json["sealed"] == .bool(true))
        let verify = try OversightBinary.runSplit(["audit", "verify", batch, "--database", system.conninfo])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")

        let csv = try OversightBinary.runSplit(["results", batch, "--format", "csv", "--database", system.conninfo])
        #expect(csv.status == 0)
        #expect(csv.stdout.split(separator: "\n").count == 10_001)
        // Written to a file (not a terminal), the header still comes first.
        let header = csv.stdout.split(separator: "\n").first.map { $0.split(separator: ",").map(String.init) } ?? []
        #expect(header.prefix(8) == ["seq", "record_id", "verdict", "worst_case", "determined", "score", "worst_case_score", "applies"], "\(header)")
        #expect(header.contains("question_1") && header.contains("question_3_if_best"))
        // The settled verdict and the worst case per record agree with the results view, and so
        // does the first question, in words.
        let ranges = try db.query("""
            SELECT seq, verdict, worst_case, determined, first_question FROM oversight.results WHERE batch_id = \(batch)::uuid ORDER BY seq
            """)
        #expect(ranges.rowCount == 10_000)
        var csvRows: [Int64: [Substring]] = [:]
        for line in csv.stdout.split(separator: "\n").dropFirst() {
            // The first eight columns are never quoted (the questions' words, later, are).
            let fields = line.split(separator: ",", maxSplits: 8, omittingEmptySubsequences: false)
            if let seq = Int64(fields[0]) { csvRows[seq] = Array(fields.prefix(8)) }
        }
        var compared = 0, undetermined = 0
        for i in 0..<ranges.rowCount {
            guard let row = csvRows[ranges.int64(i, 0)!] else { continue }
            #expect(String(row[2]) == ranges.string(i, 1) && String(row[3]) == ranges.string(i, 2))
            #expect(String(row[4]) == (ranges.bool(i, 3) == true ? "yes" : "no"))
            if ranges.bool(i, 3) == false {
                undetermined += 1
                #expect(ranges.string(i, 4)?.isEmpty == false, "an undetermined record has a first question")
            }
            compared += 1
        }
        #expect(compared == 10_000 && undetermined > 100, "compared \(compared), undetermined \(undetermined)")
        let summary = try db.query("SELECT sum(records) FROM oversight.assessment_summary WHERE batch_id = \(batch)::uuid AND worst_case IS NOT NULL")
        #expect(summary.int64(0, 0) == 10_000)
        let asked = try db.query("""
            SELECT count(*) FROM oversight.questions q JOIN oversight.results r USING (batch_id, seq)
            WHERE q.batch_id = \(batch)::uuid AND q.rank = 1 AND q.fields = r.first_question_fields AND q.question = r.first_question
            """)
        let undeterminedAll = (0..<ranges.rowCount).filter { ranges.bool($0, 3) == false }.count
        #expect(asked.int(0, 0) == undeterminedAll, "every undetermined record has its first question in oversight.questions")
        #expect(header.contains("eu-ai-act-2024 verdict") && header.contains("gdpr-dpia binds") && header.contains("privacy-baseline score"))
        // The fired-rules column agrees with the findings view.
        let firedColumn = try #require(header.firstIndex(of: "fired_rules"))
        let firedRows = csv.stdout.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            return fields.count > firedColumn && !fields[firedColumn].isEmpty
        }.count
        let firing = try db.query("SELECT count(DISTINCT seq) FROM oversight.findings WHERE batch_id = \(batch)::uuid AND outcome = 'fired'")
        #expect(firing.int(0, 0) == firedRows)
        #expect(firedRows > 0)
        // One row per finding, each with its title and citation, as the findings view has them.
        let perFinding = try OversightBinary.runSplit(["results", batch, "--format", "csv", "--findings", "--database", system.conninfo])
        #expect(perFinding.status == 0, "\(perFinding.stderr)")
        let findingCount = try db.query("SELECT count(*) FROM oversight.findings WHERE batch_id = \(batch)::uuid").int(0, 0)
        #expect(perFinding.stdout.split(separator: "\n").count == (findingCount ?? -1) + 1)
        #expect(perFinding.stdout.hasPrefix("seq,record_id,pack,pack_verdict,pack_worst_case,pack_binds,rule,outcome,severity,points,title,citation,missing_fields\n"))
        let cited = try db.query("SELECT title, citation FROM oversight.findings WHERE batch_id = \(batch)::uuid AND outcome = 'fired' LIMIT 1")
        #expect(perFinding.stdout.contains(cited.string(0, 1)!))
        let lines = try OversightBinary.runSplit(["results", batch, "--database", system.conninfo])
        let first = try JSONParser.parse(String(lines.stdout.split(separator: "\n").first ?? ""))
        if case .array(let packs)? = first["packs"], let pack = packs.first {
            #expect(pack["binds"] != nil && pack["verdict"] != nil && pack["score"] != nil)
            let titled = packs.flatMap { ResultsShape.findings($0) }.allSatisfy { $0["title"]?.stringValue?.isEmpty == false && $0["citation"]?.stringValue?.isEmpty == false }
            #expect(titled, "every finding has its title and citation")
        } else { Issue.record("no packs in \(first)") }

        #expect(system.stop().allSatisfy { $0 == 0 }, "clean exit on SIGTERM")
    }

    /// The whole Atlas of Surveillance sample, real data, through the system.
    @Test func atlasSampleEndToEnd() throws {
        let system = try RunningSystem(workers: 2, label: "atlas")
        let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Samples/atlas-of-surveillance-sample.csv").path
        let result = try system.submit(sample)
        #expect(result.status == 0, "\(result.stderr)\n\(system.logs)")
        #expect(result.stderr.contains("completed: 652 assessed, 0 failed, 0 rejected"))
        let db = try PGConnection(system.conninfo)
        let applies = try db.query("SELECT DISTINCT applies FROM oversight.assessments")
        #expect(applies.rowCount == 1 && applies.string(0, 0) == "benchmark", "US deployments: the AI Act applies as a benchmark")
        // Face recognition: the FACES program's summaries say investigators upload an image to
        // search driving-licence photos and mugshots (post, one-to-many: Annex III 1(a), settled on
        // what the text implies); Clearview's database was scraped (the register: Art. 5(1)(e));
        // Michigan's SNAP gives agencies desktop access (shared: elevated); the rest settle on
        // what is not documented, and all could be prohibited.
        let fr = try db.query("""
            SELECT verdict, worst_case, rests_on, count(*) FROM oversight.results
            WHERE record_id IN (SELECT record::jsonb->>'id' FROM oversight.jobs WHERE record::jsonb->'system'->>'type' = 'facial_recognition')
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            """)
        let groups = (0..<fr.rowCount).map { "\(fr.string($0, 0)!)/\(fr.string($0, 1)!)/\(fr.string($0, 2)!)/\(fr.int($0, 3)!)" }
        #expect(groups == ["elevated/prohibited/inferred/23", "high_risk/prohibited/inferred/15", "limited/prohibited/declared/4",
                           "prohibited/prohibited/inferred/2"], "\(groups)")
        let top = try db.query("""
            SELECT count(DISTINCT q.seq), count(DISTINCT q.seq) FILTER (WHERE q.rank <= 3)
            FROM oversight.questions q JOIN oversight.jobs j USING (batch_id, seq)
            WHERE j.record::jsonb->'system'->>'type' = 'facial_recognition' AND q.fields = '{system.identification_mode}'
            """)
        // Where the text does not say (27 records), whether it searches one-to-many is asked, and
        // as a rule among the first three questions.
        #expect(top.int(0, 0) == 27 && top.int(0, 1)! >= 20, "\(top.int(0, 0) ?? -1) asked, \(top.int(0, 1) ?? -1) among the first three")
        // Every inferred fact rests on a span that is verbatim in the stored record's text.
        let spans = try db.query("""
            SELECT count(*), count(*) FILTER (WHERE f->>'source' = 'summary' AND strpos(s.record::jsonb->>'summary', f->>'span') = 0)
            FROM oversight.results r JOIN oversight.submitted_records s USING (batch_id, seq), json_array_elements(r.inferred) AS f
            """)
        #expect(spans.int(0, 0)! > 80 && spans.int(0, 1) == 0, "\(spans.int(0, 0) ?? -1) facts, \(spans.int(0, 1) ?? -1) not verbatim")
        // Every inferred fact names, by SHA-256, an evidence pack the store holds.
        let pinned = try db.query("""
            SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (
                SELECT 1 FROM oversight.evidence_packs p WHERE p.sha256 = decode(split_part(f->>'pack', 'sha256:', 2), 'hex')))
            FROM oversight.submitted_records s, json_array_elements(s.record::json->'inferred') AS f
            """)
        #expect(pinned.int(0, 0)! > 80 && pinned.int(0, 1) == 0, "\(pinned.int(0, 0) ?? -1) facts, \(pinned.int(0, 1) ?? -1) name no stored pack")
        let provenance = try db.query("SELECT count(*) FROM oversight.findings WHERE 'system.identification_mode' = ANY (inferred_facts)")
        #expect(provenance.int(0, 0)! >= 15, "findings say which of their facts were inferred")
        // Every finding reads back with its rule's rationale and remediation from the stored pack.
        let texts = try db.query("SELECT count(*), count(rationale), count(remediation), count(citation), count(title) FROM oversight.findings")
        #expect(texts.int(0, 0)! > 400)
        #expect(texts.int(0, 0) == texts.int(0, 1))
        #expect(texts.int(0, 0) == texts.int(0, 2))
        #expect(texts.int(0, 0) == texts.int(0, 3), "citations come from the pack")
        #expect(texts.int(0, 0) == texts.int(0, 4), "titles come from the pack")
        _ = system.stop()
    }
}

@Suite struct CommandLineTests {
    @Test func everyCommandHasHelpWithAnExample() throws {
        for command in [["coordinator"], ["worker"], ["submit"], ["status"], ["results"], ["reassess"], ["questions"], ["explain"], ["criteria", "validate"], ["migrate"], ["demo"], ["generate"],
                        ["local-db"], ["keys", "generate"], ["keys", "show"], ["audit", "verify"], ["grant-reader"], ["grant-service"]] {
            let help = try OversightBinary.runSplit(command + ["--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("Example"), "\(command) --help")
        }
    }

    @Test func aMissingFileIsOneClearError() throws {
        let result = try OversightBinary.runSplit(["submit", "/nonexistent/batch.jsonl", "--coordinator", "tcp://127.0.0.1:1"])
        #expect(result.status == 1)
        #expect(result.stderr == "oversight: file not found: /nonexistent/batch.jsonl\n")
    }

    @Test func anUnreachableCoordinatorIsOneClearError() throws {
        let file = NSTemporaryDirectory() + "one-\(UUID().uuidString).jsonl"
        try "{}\n".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try OversightBinary.runSplit(["submit", file, "--coordinator", "tcp://127.0.0.1:\(freeLoopbackPort())", "--timeout", "1"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("no answer from the coordinator"))
    }

    @Test func anUnreachableDatabaseIsOneClearError() throws {
        for command in [["coordinator"], ["worker"], ["migrate"], ["status"]] {
            let result = try OversightBinary.runSplit(command + ["--database", "host=127.0.0.1 port=\(freeLoopbackPort()) connect_timeout=2"])
            #expect(result.status == 1, "\(command)")
            #expect(result.stderr.contains("cannot reach PostgreSQL"), "\(command): \(result.stderr)")
        }
    }

    @Test func aPasswordOnTheCommandLineIsRefused() throws {
        for command in [["coordinator"], ["worker"], ["status"], ["migrate"]] {
            let result = try OversightBinary.runSplit(command + ["--database", "postgresql://u:hunter2@127.0.0.1:1/db"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("contains a password") && result.stderr.contains(".pgpass"), "\(command): \(result.stderr)")
            #expect(!result.stderr.contains("hunter2"), "the password is never echoed")
        }
        let keyValue = try OversightBinary.runSplit(["status", "--database", "host=db password=hunter2"])
        #expect(keyValue.stderr.contains("contains a password"))
    }

    @Test func badOptionsAreRejectedWithWhatToDo() throws {
        let result = try OversightBinary.runSplit(["submit", "x.jsonl", "--format", "xml"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("use jsonl, json or csv"))
    }

    /// What a user meets with a database that was never migrated, a connection string that is
    /// none, a coordinator address in another form, an unknown pack, an unknown batch: each one
    /// sentence that says what to do, and no SQL.
    @Test func messagesSayWhatToDoAndNeverShowSQL() throws {
        let empty = try TestDatabase.create("nomigrate")
        for command in [["status"], ["results", UUID().uuidString], ["deadletters"]] {
            let result = try OversightBinary.runSplit(command + ["--database", empty])
            #expect(result.status == 1, "\(command)")
            #expect(result.stderr.contains("no Oversight schema") && result.stderr.contains("oversight migrate"), "\(command): \(result.stderr)")
            #expect(!result.stderr.contains("SELECT") && !result.stderr.contains("relation"), "\(command): \(result.stderr)")
        }
        let notURL = try OversightBinary.runSplit(["status", "--database", "not a url"])
        #expect(notURL.stderr.contains("is neither a URI") && notURL.stderr.contains("postgresql://"), "\(notURL.stderr)")
        let migrated = try TestDatabase.create("msgs")
        _ = try OversightBinary.runSplit(["migrate", "--database", migrated])
        let missing = UUID().uuidString.lowercased()
        let letters = try OversightBinary.runSplit(["deadletters", missing, "--database", migrated])
        #expect(letters.status == 1 && letters.stderr.contains("no batch \(missing)"), "\(letters.stderr)")

        let file = NSTemporaryDirectory() + "one-\(UUID().uuidString).jsonl"
        try "{}\n".write(toFile: file, atomically: true, encoding: .utf8)
        let http = try OversightBinary.runSplit(["submit", file, "--coordinator", "http://127.0.0.1:5556"])
        #expect(http.status != 0 && http.stderr.contains("not a ZeroMQ endpoint") && http.stderr.contains("tcp://HOST:PORT"), "\(http.stderr)")
        // HOST:PORT is taken as tcp://HOST:PORT: loopback, so no keys are needed; nobody answers there.
        let bare = try OversightBinary.runSplit(["submit", file, "--coordinator", "localhost:\(freeLoopbackPort())", "--timeout", "1"])
        #expect(bare.stderr.contains("no answer from the coordinator at tcp://localhost:"), "\(bare.stderr)")

        let show = try OversightBinary.runSplit(["criteria", "show", "nope"])
        #expect(show.stderr == "oversight: no built-in pack \"nope\" and no file of that name; built-in packs: eu-ai-act-2024, gdpr-dpia, privacy-baseline\n")
        let baseline = try OversightBinary.runSplit(["criteria", "show", "privacy-baseline"])
        #expect(baseline.stdout.contains("Binds in: nowhere; applies everywhere as a benchmark\n"))
        #expect(!baseline.stdout.contains("severity  needs") && !baseline.stdout.contains("1 points"))
        let directory = NSTemporaryDirectory() + "packs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let none = try OversightBinary.runSplit(["criteria", "validate", directory])
        #expect(none.stderr.contains("is a directory with no .json files") && !none.stderr.contains("NSCocoaErrorDomain"), "\(none.stderr)")
        try #"{"id":"x","version":"1","title":"t","rules":[{"id":"a","title":"t","citation":"c","severity":"elevated","points":5,"rationale":"r","remediation":"m","when":{"field":"system.tpye","equals":"alpr"}},{"id":"a","title":"t","citation":"c","severity":"elevated","points":1,"rationale":"r","remediation":"m","when":{"field":"system.type","equals":"toaster"}}]}"#
            .write(toFile: directory + "/bad.json", atomically: true, encoding: .utf8)
        let all = try OversightBinary.runSplit(["criteria", "validate", directory])
        #expect(all.status == 1)
        #expect(all.stderr.contains("system.tpye") && all.stderr.contains("duplicate rule id") && all.stderr.contains("toaster") && all.stderr.contains("3 problems"),
                "every problem, not the first: \(all.stderr)")
    }

    /// Help text is written unwrapped and wrapped once, by the parser: no paragraph line is cut
    /// short in the middle of a sentence and continued on the next line.
    @Test func helpTextIsWrappedOnce() throws {
        for command in [["coordinator"], ["worker"], ["submit"], ["status"], ["results"], ["audit", "verify"], ["local-db"], ["criteria"],
                        ["grant-reader"], ["deadletters"], ["retry"], ["cancel"], ["import", "atlas"], ["explain"], ["bench"]] {
            let help = try OversightBinary.runSplit(command + ["--help"]).stdout
            let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let end = lines.firstIndex { $0.hasPrefix("USAGE:") } ?? lines.count
            for (i, line) in lines[..<end].enumerated() where i + 1 < end {
                let next = lines[i + 1]
                guard !line.isEmpty, !line.hasPrefix(" "), !next.isEmpty, !next.hasPrefix(" ") else { continue }
                #expect(line.count + 1 + (next.split(separator: " ").first?.count ?? 0) >= 80, "\(command): ragged line \"\(line)\"")
            }
        }
    }

    @Test func unknownCSVColumnsAreReportedWithTheLine() throws {
        let file = NSTemporaryDirectory() + "bad-\(UUID().uuidString).csv"
        try "system.type,colour\nalpr,red\n".write(toFile: file, atomically: true, encoding: .utf8)
        let system = try RunningSystem(workers: 1, label: "csvhdr")
        let result = try system.submit(file)
        #expect(result.status == 1)
        #expect(result.stderr.contains("line 1: column \"colour\" is not a field"))
        _ = system.stop()
    }
}
