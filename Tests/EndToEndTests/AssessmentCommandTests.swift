import Foundation
import Testing
import Assessment
import LibPQ
import TestSupport

/// The commands of the assessment engine, run as the built binary.
@Suite struct AssessmentCommandTests {
    let samples = samplesDirectory

    func temporary(_ name: String, _ text: String) throws -> String { try temporaryFile(name, text) }

    static let customPack = """
        {
          "id": "ngo-watchlist",
          "version": "1",
          "title": "Our watchlist",
          "rules": [
            {
              "id": "no-clearview",
              "title": "Uses a vendor on our watchlist",
              "citation": "NGO policy 2026-3",
              "severity": "elevated",
              "points": 40,
              "when": {"field": "system.vendor", "in": ["Clearview AI"]},
              "rationale": "The vendor built its database by scraping.",
              "remediation": "Ask the operator to end the contract."
            }
          ]
        }
        """

    @Test func explainGivesTheReasoningAndTheStoredForm() throws {
        let record = try temporary("r.json", #"{"id":"X1","operator":{"kind":"private","country":"NL"},"system":{"type":"emotion_recognition"},"context":{"settings":["workplace"],"medical_or_safety_reason":false}}"#)
        let prose = try OversightBinary.runSplit(["explain", record])
        #expect(prose.status == 0, "\(prose.stderr)")
        #expect(prose.stdout.hasPrefix("Record X1: prohibited\n"), "settled and determined: \(prose.stdout)")
        #expect(prose.stdout.contains("Settled: prohibited, because:\n  • Emotion recognition in the workplace or in education — prohibited, 100 points (ai-act-5-1-f)"))
        #expect(prose.stdout.contains("Determined: no open fact could change the verdict."))
        #expect(prose.stdout.contains("Not legal advice"))
        #expect(prose.stdout.contains("Regulation (EU) 2024/1689, Art. 5(1)(f)"))
        #expect(prose.stdout.contains("Because: context.medical_or_safety_reason = false; context.settings = [\"workplace\"]; system.type = \"emotion_recognition\""))
        #expect(prose.stdout.contains("binds in law here"))
        let json = try OversightBinary.runSplit(["explain", record, "--json", "--as-of", "2026-12-01"])
        let expected = CriteriaSet.builtIn.assess(try JSONParser.parse(String(contentsOfFile: record, encoding: .utf8)), asOf: CalendarDate("2026-12-01")!)
        #expect(json.stdout == String(decoding: expected.canonicalBytes, as: UTF8.self) + "\n")
    }

    @Test func explainRefusesAnInvalidRecordNamingTheField() throws {
        let record = try temporary("bad.json", #"{"system":{"type":"toaster"}}"#)
        let result = try OversightBinary.runSplit(["explain", record])
        #expect(result.status == 1)
        #expect(result.stderr.contains("field \"system.type\""))
    }

    @Test func criteriaValidateLocatesErrors() throws {
        let good = try temporary("good.json", Self.customPack)
        let ok = try OversightBinary.runSplit(["criteria", "validate", good])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("valid pack ngo-watchlist 1, 1 rule,"))
        let bad = try temporary("bad.json", Self.customPack.replacingOccurrences(of: "system.vendor", with: "system.vendr"))
        let failed = try OversightBinary.runSplit(["criteria", "validate", bad])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("bad.json:12: rules[0].when.field: \"system.vendr\" is not a field of the deployment schema"), "\(failed.stderr)")
    }

    @Test func criteriaListAndShow() throws {
        let list = try OversightBinary.runSplit(["criteria", "list"])
        for id in ["eu-ai-act-2024", "gdpr-dpia", "privacy-baseline"] { #expect(list.stdout.contains(id)) }
        let show = try OversightBinary.runSplit(["criteria", "show", "gdpr-dpia"])
        #expect(show.stdout.contains("led-10  [prohibited, 100 points, applies from 2018-05-06]"), "\(show.stdout)")
        #expect(show.stdout.contains("wp248-4  [criterion: counts toward gdpr-35-1, led-27, which need 2 of 9, applies from 2018-05-25]"))
        #expect(show.stdout.contains("Directive (EU) 2016/680 (Law Enforcement Directive), Art. 10"))
    }

    @Test func importAtlasWritesOneValidRecordPerRow() throws {
        let result = try OversightBinary.runSplit(["import", "atlas", samples + "/atlas-of-surveillance-sample.csv"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 652)
        for line in lines {
            guard case .valid = RecordCheck.check(Array(line.utf8)) else { Issue.record("invalid record \(line)"); return }
        }
        #expect(result.stderr.contains("652 records written"))
        let notAtlas = try OversightBinary.runSplit(["import", "atlas", try temporary("x.csv", "system.type\nalpr\n")])
        #expect(notAtlas.status == 1)
        #expect(notAtlas.stderr.contains("not an Atlas of Surveillance export"))
    }

    /// A custom pack travels with the batch, is stored by its hash, and workers score with it.
    @Test func aCustomPackIsStoredAndUsedByWorkers() throws {
        let system = try RunningSystem(workers: 1, label: "custompack")
        let pack = try temporary("pack.json", Self.customPack)
        let records = try temporary("r.jsonl", #"{"id":"A","system":{"vendor":"Clearview AI"}}"# + "\n" + #"{"id":"B","system":{"vendor":"Axon"}}"# + "\n")
        let result = try system.submit(records, ["--pack", pack, "--pack", "eu-ai-act-2024"])
        #expect(result.status == 0, "\(result.stderr)\n\(system.logs)")
        let db = try PGConnection(system.conninfo)
        let stored = try db.query("SELECT count(*) FROM oversight.criteria_packs WHERE pack_id = 'ngo-watchlist'")
        #expect(stored.int(0, 0) == 1)
        let rows = try db.query("SELECT record_id, verdict FROM oversight.pack_results WHERE pack = 'ngo-watchlist' ORDER BY record_id")
        #expect(rows.rowCount == 2)
        #expect(rows.string(0, 1) == "elevated")
        #expect(rows.string(1, 1) == "minimal")
        let progress = try db.query("SELECT array_to_string(packs, ',') FROM oversight.batch_progress")
        #expect(progress.string(0, 0) == "ngo-watchlist@1,eu-ai-act-2024@2.0.0")
        _ = system.stop()
    }

    /// `criteria validate` explains a rule no facts can make fire (a problem) and the keys the
    /// engine no longer needs (warnings, the pack still valid).
    @Test func validateExplainsRulesThatCanNeverFireAndRedundantKeys() throws {
        let contradictory = Self.customPack.replacingOccurrences(of: #""when": {"field": "system.vendor", "in": ["Clearview AI"]},"#,
            with: #""when": {"all": [{"field": "system.timing", "equals": "real_time"}, {"field": "system.timing", "equals": "post"}]},"#)
        #expect(contradictory != Self.customPack)
        let never = try OversightBinary.runSplit(["criteria", "validate", try temporary("never.json", contradictory)])
        #expect(never.status == 1)
        #expect(never.stderr.contains("rules[0].when: rule no-clearview can never fire: no values of the fields it reads (system.timing) make its condition true"), "\(never.stderr)")
        let old = Self.customPack.replacingOccurrences(of: #""points": 40,"#, with: #""points": 40, "report_unknown": false,"#)
        #expect(old != Self.customPack)
        let warned = try OversightBinary.runSplit(["criteria", "validate", try temporary("old.json", old)])
        #expect(warned.status == 0, "\(warned.stderr)")
        #expect(warned.stderr.contains("warning: rules[0].report_unknown: no longer used"), "\(warned.stderr)")
        #expect(warned.stdout.contains("valid pack ngo-watchlist"))
        let builtIn = try OversightBinary.runSplit(["criteria", "validate", samples + "/../Schemas/packs"])
        #expect(builtIn.status == 0 && builtIn.stderr.isEmpty, "the built-in packs have no rule that can never fire: \(builtIn.stderr)")
    }

    /// `reassess` assesses a batch's records again as a new batch linked to the old one, seq for
    /// seq, as of the day it is given.
    @Test func reassessMakesALinkedBatchWithTheSameRecords() throws {
        let system = try RunningSystem(workers: 1, label: "reassess")
        let records = try temporary("r.jsonl", (1...25).map { #"{"id":"R\#($0)","system":{"type":"facial_recognition"}}"# }.joined(separator: "\n") + "\n")
        let first = try system.submit(records, ["--pack", "eu-ai-act-2024", "--as-of", "2026-01-15"])
        #expect(first.status == 0, "\(first.stderr)")
        let old = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let again = try OversightBinary.runSplit(["reassess", old, "--database", system.conninfo, "--coordinator", system.clientEndpoint,
                                                  "--as-of", "2026-12-01", "--wait"], timeout: 120)
        #expect(again.status == 0, "\(again.stderr)\n\(system.logs)")
        let new = again.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(UUID(uuidString: new) != nil && new != old, "the new batch's id: \(again.stdout)")
        let db = try PGConnection(system.conninfo)
        let link = try db.query("SELECT reassessment_of::text, to_char(as_of, 'YYYY-MM-DD') FROM oversight.batches WHERE batch_id = \(new)::uuid")
        #expect(link.string(0, 0) == old && link.string(0, 1) == "2026-12-01")
        let pairs = try db.query("""
            SELECT count(*), count(*) FILTER (WHERE o.record_id = n.record_id),
                   count(*) FILTER (WHERE (o.result::json->>'as_of') = '2026-01-15' AND (n.result::json->>'as_of') = '2026-12-01')
            FROM oversight.results o JOIN oversight.results n USING (seq) WHERE o.batch_id = \(old)::uuid AND n.batch_id = \(new)::uuid
            """)
        #expect(pairs.int(0, 0) == 25 && pairs.int(0, 1) == 25 && pairs.int(0, 2) == 25)
        // As of 2026-01-15 the Annex III obligations were not yet in force; they are now.
        let notInForce = try db.query("""
            SELECT count(*) FILTER (WHERE 'ai-act-annex-iii-1-a' = ANY (not_in_force)) FROM oversight.pack_results WHERE batch_id = \(old)::uuid
            """)
        #expect(notInForce.int(0, 0) == 25)
        let verify = try OversightBinary.runSplit(["audit", "verify", new, "--database", system.conninfo])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let unknown = try OversightBinary.runSplit(["reassess", UUID().uuidString.lowercased(), "--database", system.conninfo,
                                                    "--coordinator", system.clientEndpoint])
        #expect(unknown.status == 1 && unknown.stderr.contains("no batch"), "\(unknown.stderr)")
        _ = system.stop()
    }

    /// `questions` drafts a public-records request per operator: each question once with the
    /// deployments it concerns; law where a pack binds, a recognised standard where it does not.
    @Test func questionsDraftARequestPerOperator() throws {
        let system = try RunningSystem(workers: 1, label: "questions")
        let lines = [
            #"{"id":"T1","operator":{"name":"Test Police Department","region":"NY","kind":"law_enforcement","country":"US"},"system":{"type":"facial_recognition","name":"Face search"},"data":{"categories":["biometric"]}}"#,
            #"{"id":"T2","operator":{"name":"Test Police Department","region":"NY","kind":"law_enforcement","country":"US"},"system":{"type":"drone"}}"#,
            #"{"id":"T3","operator":{"name":"Test Police Department","region":"GA","kind":"law_enforcement","country":"US"},"system":{"type":"alpr"}}"#,
            #"{"id":"E1","operator":{"name":"Polizei Musterstadt","kind":"law_enforcement","country":"DE"},"system":{"type":"facial_recognition"}}"#,
        ]
        let records = try temporary("ops.jsonl", lines.joined(separator: "\n") + "\n")
        let submitted = try system.submit(records)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let batch = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let ny = try OversightBinary.runSplit(["questions", batch, "--database", system.conninfo, "--operator", "test police department, ny"])
        #expect(ny.status == 0, "\(ny.stderr)")
        #expect(ny.stdout.hasPrefix("# Draft request for records: Test Police Department, NY\n"), "\(ny.stdout.prefix(200))")
        #expect(ny.stdout.contains("about 2 surveillance technologies"))
        #expect(ny.stdout.contains("Concerns: Face search (record T1), drone (record T2)"), "a question asked of both deployments is asked once")
        #expect(ny.stdout.contains("sets a recognised standard here, not a legal obligation of this operator"))
        #expect(!ny.stdout.contains("record T3"), "the agency of the same name in another state is another operator")
        let questionCount = ny.stdout.components(separatedBy: "\n## ").count - 1
        let distinct = try PGConnection(system.conninfo).query("""
            SELECT count(DISTINCT q.fields) FROM oversight.questions q WHERE q.batch_id = \(batch)::uuid AND q.record_id IN ('T1', 'T2')
            """).int(0, 0)
        #expect(questionCount == distinct, "one question per distinct fact asked of the operator's deployments")
        let both = try OversightBinary.runSplit(["questions", batch, "--database", system.conninfo, "--operator", "Test Police Department"])
        #expect(both.stdout.contains("Test Police Department, NY") && both.stdout.contains("Test Police Department, GA"))
        let de = try OversightBinary.runSplit(["questions", batch, "--database", system.conninfo, "--operator", "Polizei Musterstadt", "--format", "csv"])
        #expect(de.status == 0, "\(de.stderr)")
        let rows = de.stdout.split(separator: "\n")
        #expect(rows.first == "operator,number,question,fields,lead_rule,title,citation,binds,could_become,deployments,records")
        #expect(rows.count > 2 && rows.dropFirst().allSatisfy { $0.hasPrefix("Polizei Musterstadt,") })
        #expect(rows.contains { $0.contains(",yes,prohibited,1,E1") }, "the AI Act binds a German police force: \(de.stdout)")
        let json = try OversightBinary.runSplit(["questions", batch, "--database", system.conninfo, "--format", "json"])
        guard case .array(let drafts) = try JSONParser.parse(json.stdout) else { Issue.record("not a JSON array: \(json.stdout)"); return }
        #expect(drafts.count == 3)
        let unknown = try OversightBinary.runSplit(["questions", batch, "--database", system.conninfo, "--operator", "Nobody"])
        #expect(unknown.status == 1 && unknown.stderr.contains("operators with questions: Polizei Musterstadt; Test Police Department, GA"), "\(unknown.stderr)")
        _ = system.stop()
    }

    /// Answers come back: records resubmitted with what an agency answered supersede the
    /// earlier ones (same id, or `supersedes`); status shows how verdicts moved and which
    /// answers moved them, and explain --previous does for one record.
    @Test func answersThatComeBackMoveTheVerdictAndSaySo() throws {
        let system = try RunningSystem(workers: 1, label: "answers")
        let before = [
            #"{"id":"F1","operator":{"name":"Test PD","kind":"law_enforcement","country":"US"},"system":{"type":"facial_recognition"},"data":{"categories":["biometric"]}}"#,
            #"{"id":"A1","operator":{"name":"Test PD","kind":"law_enforcement","country":"US"},"system":{"type":"alpr"}}"#,
        ]
        let first = try system.submit(try temporary("before.jsonl", before.joined(separator: "\n") + "\n"))
        #expect(first.status == 0, "\(first.stderr)")
        let answered = [
            #"{"id":"F1","operator":{"name":"Test PD","kind":"law_enforcement","country":"US"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"post"},"data":{"categories":["biometric"]}}"#,
            #"{"id":"A1-2026","supersedes":"A1","operator":{"name":"Test PD","kind":"law_enforcement","country":"US"},"system":{"type":"alpr"},"data":{"retention_days":365}}"#,
            #"{"id":"N1","operator":{"name":"Test PD","kind":"law_enforcement","country":"US"},"system":{"type":"drone"}}"#,
        ]
        let second = try system.submit(try temporary("answered.jsonl", answered.joined(separator: "\n") + "\n"))
        #expect(second.status == 0, "\(second.stderr)")
        let batch = second.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let status = try OversightBinary.runSplit(["status", batch, "--database", system.conninfo])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("2 records supersede earlier assessments; 2 moved:"), "\(status.stdout)")
        #expect(status.stdout.contains("record F1 (was in batch "), "\(status.stdout)")
        #expect(status.stdout.contains("limited — could be prohibited → high_risk — could be prohibited; system.identification_mode = \"one_to_many\" (asked); system.timing = \"post\" (asked)"), "\(status.stdout)")
        #expect(status.stdout.contains("record A1-2026"), "an explicit supersedes links another id")
        let json = try JSONParser.parse(try OversightBinary.runSplit(["status", batch, "--json", "--database", system.conninfo]).stdout)
        #expect(json["superseded"]?["records"] == .number(2) && json["superseded"]?["moved"] == .number(2))
        // One record: explain --previous.
        let old = try temporary("f1-before.json", before[0]), new = try temporary("f1-after.json", answered[0])
        let explained = try OversightBinary.runSplit(["explain", new, "--previous", old])
        #expect(explained.status == 0, "\(explained.stderr)")
        #expect(explained.stdout.contains("Since \(old): limited — could be prohibited → high_risk — could be prohibited\n  What changed: system.identification_mode = \"one_to_many\" (asked); system.timing = \"post\" (asked)"), "\(explained.stdout)")
        _ = system.stop()
    }

    /// An evidence pack of one's own: `criteria validate` checks it with line and path, and
    /// `import atlas --evidence-pack` reads the text with it, every fact naming its hash.
    @Test func anEvidencePackOfOnesOwnIsValidatedAndUsed() throws {
        let pack = #"""
            {"id": "ours", "version": "1", "title": "Ours", "kind": "evidence",
             "patterns": [{"id": "drone-program", "field": "context.purposes", "value": ["law_enforcement"], "strength": "implied",
                           "phrases": ["drone program"]}]}
            """#
        let file = try temporary("ours.evidence.json", pack)
        let valid = try OversightBinary.runSplit(["criteria", "validate", file])
        #expect(valid.status == 0 && valid.stdout.contains("valid evidence pack ours 1, 1 pattern, 0 register entries"), "\(valid.stdout)\(valid.stderr)")
        let bad = try temporary("bad.evidence.json", pack.replacingOccurrences(of: "context.purposes", with: "context.porpoises"))
        let refused = try OversightBinary.runSplit(["criteria", "validate", bad])
        #expect(refused.status == 1 && refused.stderr.contains("bad.evidence.json:2: patterns[0].field: \"context.porpoises\" is not a leaf field"), "\(refused.stderr)")
        let imported = try OversightBinary.runSplit(["import", "atlas", samples + "/atlas-of-surveillance-sample.csv", "--evidence-pack", file])
        #expect(imported.status == 0, "\(imported.stderr)")
        let facts = imported.stdout.split(separator: "\n").compactMap { line -> [JSONValue]? in
            guard case .array(let list)? = (try? JSONParser.parse(String(line)))?["inferred"] else { return nil }
            return list
        }.flatMap { $0 }
        #expect(facts.count > 3 && facts.allSatisfy { $0["pattern"] == .string("drone-program") && $0["pack"]?.stringValue?.hasPrefix("ours 1 sha256:") == true })
        #expect(imported.stderr.contains("facts read from the text with ours 1 sha256:"))

        // Submitted, the facts count only if the pack that read them is stored with the batch,
        // and only as that pack, run on the record, finds them.
        let system = try RunningSystem(workers: 1, label: "evidencepack")
        let read = imported.stdout.split(separator: "\n").filter { $0.contains("\"inferred\"") }.prefix(4).map(String.init)
        #expect(read.count == 4)
        let records = try temporary("ours.jsonl", read.joined(separator: "\n") + "\n")
        let without = try system.submit(records)
        #expect(without.status == 0 && without.stderr.contains("0 records accepted, 4 rejected"), "\(without.stderr)")
        #expect(without.stderr.contains("field \"inferred[0].pack\": evidence pack sha256:") && without.stderr.contains("submit with --evidence-pack FILE"), "\(without.stderr)")
        let with = try system.submit(records, ["--evidence-pack", file])
        #expect(with.status == 0 && with.stderr.contains("4 records accepted, 0 rejected"), "\(with.stderr)\n\(system.logs)")
        let db = try PGConnection(system.conninfo)
        #expect(try db.query("SELECT count(*) FROM oversight.evidence_packs WHERE pack_id = 'ours' AND version = '1'").int(0, 0) == 1)
        #expect(try db.query("SELECT count(*) FROM oversight.results WHERE rests_on IS NOT NULL AND inferred::text LIKE '%drone-program%'").int(0, 0) == 4)
        // A fact written by hand, or changed, is refused by line and field; the rest is taken in.
        let forged = read[0].replacingOccurrences(of: #""span":""#, with: #""span":"not in the text "#)
        let altered = read[1].replacingOccurrences(of: #""value":["law_enforcement"]"#, with: #""value":["border_control"]"#)
        // The key spelled with an escape is the same key: it is checked too.
        let escaped = read[3].replacingOccurrences(of: #""inferred":"#, with: #""\u0069nferred":"#)
            .replacingOccurrences(of: #""span":""#, with: #""span":"not in the text "#)
        #expect(forged != read[0] && altered != read[1] && escaped.contains("u0069nferred"))
        let forgedFile = try temporary("forged.jsonl", [forged, altered, read[2], escaped].joined(separator: "\n") + "\n")
        let forgedRefused = try system.submit(forgedFile, ["--evidence-pack", file])
        #expect(forgedRefused.status == 0 && forgedRefused.stderr.contains("1 record accepted, 3 rejected"), "\(forgedRefused.stderr)")
        #expect(forgedRefused.stderr.contains("forged.jsonl:4: field \"inferred[0].span\""), "\(forgedRefused.stderr)")
        #expect(forgedRefused.stderr.contains("forged.jsonl:1: field \"inferred[0].span\": the span is not in the record's summary"), "\(forgedRefused.stderr)")
        #expect(forgedRefused.stderr.contains("forged.jsonl:2: field \"inferred[0]\": the evidence pack it names, run on this record's text, does not find this fact (context.purposes from drone-program)"), "\(forgedRefused.stderr)")
        _ = system.stop()
    }
}
