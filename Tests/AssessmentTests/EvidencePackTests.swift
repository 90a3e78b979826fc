import Testing
@testable import Assessment

@Suite struct EvidencePackTests {
    static func pack(_ patterns: String, register: String = "[]") -> String {
        """
        {
          "id": "t", "version": "1", "title": "test", "kind": "evidence",
          "negations": ["not", "no", "without"],
          "patterns": \(patterns),
          "register": \(register)
        }
        """
    }

    static let live = #"[{"id": "live", "field": "system.timing", "value": "real_time", "strength": "stated", "phrases": ["live face recognition"]}]"#

    func record(_ summary: String, type: String = "facial_recognition", vendor: String? = nil) -> JSONValue {
        var system: [(key: String, value: JSONValue)] = [("type", .string(type))]
        if let vendor { system.append(("vendor", .string(vendor))) }
        return .object([("summary", .string(summary)), ("system", .object(system))])
    }

    @Test func aPhraseInfersItsFactWithTheExactSpan() throws {
        let pack = try EvidencePack(json: Self.pack(Self.live))
        let facts = pack.infer(record("The Ontario Police Department uses Oosto Live Face Recognition at the airport."))
        #expect(facts.count == 1)
        #expect(facts[0].field == "system.timing" && facts[0].value == .string("real_time"))
        #expect(facts[0].span == "Live Face Recognition", "the span is the text's own, in its own case")
        #expect(facts[0].source == "summary" && facts[0].pattern == "live" && facts[0].strength == .stated)
    }

    @Test func negatedAndPartialWordMentionsInferNothing() throws {
        let pack = try EvidencePack(json: Self.pack(Self.live))
        #expect(pack.infer(record("The department does not use live face recognition.")).isEmpty)
        #expect(pack.infer(record("The department said it uses no live face recognition on streets.")).isEmpty)
        #expect(pack.infer(record("The department doesn't run live face recognition.")).isEmpty)
        #expect(pack.infer(record("It uses prelive face recognitions.")).isEmpty, "whole words only")
        // A negation in another sentence does not reach it.
        #expect(pack.infer(record("The sheriff does not own drones. The police use live face recognition.")).count == 1)
    }

    @Test func withAndTypesNarrowAPattern() throws {
        let pack = try EvidencePack(json: Self.pack(#"""
            [{"id": "airport", "field": "context.settings", "value": ["publicly_accessible"], "strength": "implied",
              "phrases": ["international airport"], "with": ["face recognition"], "types": ["facial_recognition"]}]
            """#))
        #expect(pack.infer(record("Face recognition is used at the Ontario International Airport.")).count == 1)
        #expect(pack.infer(record("The police bought drones. The Ontario International Airport is nearby.")).isEmpty, "with: same sentence")
        #expect(pack.infer(record("Face recognition at the International Airport.", type: "alpr")).isEmpty, "types")
    }

    @Test func theRegisterMatchesVendorSpellingsAndQuotesItsSource() throws {
        let register = #"""
            [{"id": "cv", "vendors": ["Clearview AI"], "field": "system.reference_database_sources", "value": ["scraped_from_internet"],
              "strength": "stated", "source": {"document": "d", "publisher": "p", "date": "2022-10-26", "url": "https://example.org/x",
              "passage": "collects photographs from many websites"}}]
            """#
        let pack = try EvidencePack(json: Self.pack("[]", register: register))
        for vendor in ["Clearview AI", "clearview ai, inc.", "Axon, Clearview AI"] {
            let facts = pack.infer(record("Uses it.", vendor: vendor))
            #expect(facts.count == 1 && facts[0].source == "register:cv" && facts[0].span == "collects photographs from many websites", "\(vendor)")
        }
        #expect(pack.infer(record("Uses it.", vendor: "Clearwater Systems")).isEmpty)
        // An entry without its source is refused, with the path and line.
        let unsourced = Self.pack("[]", register: #"[{"id": "x", "vendors": ["V"], "field": "system.timing", "value": "post", "strength": "stated"}]"#)
        #expect(throws: CriteriaPack.CompileError.self) { try EvidencePack(json: unsourced) }
        do { _ = try EvidencePack(json: unsourced) } catch { #expect(error.description.contains("register[0]") && error.description.contains("source")) }
    }

    /// At intake a record's inferred facts are checked against the pack they name: it must be
    /// known, and, run on the record's own text, find exactly that fact.
    @Test func inferredFactsAreCheckedAgainstThePackTheyName() throws {
        let pack = try EvidencePack(json: Self.pack(Self.live))
        let known = { (hex: String) in hex == pack.sha256Hex ? pack : nil }
        let read = pack.annotate(record("Police use live face recognition downtown."), .all)
        #expect(EvidenceCheck.violation(in: read, pack: known) == nil)
        #expect(EvidenceCheck.violation(in: record("No facts at all."), pack: known) == nil)
        #expect(EvidenceCheck.packHash(pack.pin) == pack.sha256Hex)
        func changed(_ edit: (inout JSONValue) -> Void) -> JSONValue {
            guard case .array(let facts)? = read["inferred"], var fact = facts.first else { Issue.record("no fact was read"); return read }
            edit(&fact)
            var r = read
            r.set(path: ["inferred"], .array([fact]))
            return r
        }
        let unknown = EvidenceCheck.violation(in: read) { _ in nil }
        #expect(unknown?.field == "inferred[0].pack" && unknown?.message.contains("--evidence-pack") == true)
        let unpinned = EvidenceCheck.violation(in: changed { $0.set(path: ["pack"], .string("t 1")) }, pack: known)
        #expect(unpinned?.field == "inferred[0].pack")
        let moved = EvidenceCheck.violation(in: changed { $0.set(path: ["span"], .string("dead face recognition")) }, pack: known)
        #expect(moved?.field == "inferred[0].span" && moved?.message.contains("not in the record's summary") == true)
        let other = EvidenceCheck.violation(in: changed { $0.set(path: ["value"], .string("post")) }, pack: known)
        #expect(other?.field == "inferred[0]" && other?.message.contains("does not find this fact (system.timing from live)") == true)
        let stronger = EvidenceCheck.violation(in: changed { $0.set(path: ["strength"], .string("implied")) }, pack: known)
        #expect(stronger?.field == "inferred[0]")
        // Text the record no longer says: the same fact on an edited summary is refused.
        var edited = read
        edited.set(path: ["summary"], .string("Police do not use live face recognition downtown."))
        #expect(EvidenceCheck.violation(in: edited, pack: known)?.field == "inferred[0]")
    }

    /// A vendor sells several products: an entry with `types` is about one of them.
    @Test func aRegisterEntryCanBeAboutOneProductType() throws {
        let register = #"""
            [{"id": "review", "vendors": ["SoundThinking"], "types": ["gunshot_detection"], "field": "safeguards.human_review", "value": true,
              "strength": "stated", "source": {"document": "d", "publisher": "p", "date": "undated", "url": "https://example.org/y",
              "passage": "experts confirm that the events are gunfire"}}]
            """#
        let pack = try EvidencePack(json: Self.pack("[]", register: register))
        #expect(pack.infer(record("Uses it.", type: "gunshot_detection", vendor: "SoundThinking")).count == 1)
        #expect(pack.infer(record("Uses CrimeTracer.", type: "other", vendor: "SoundThinking")).isEmpty)
    }

    @Test func aPackIsCheckedAgainstTheSchemaWithLineAndPath() {
        let badField = Self.pack(#"[{"id": "a", "field": "system.timer", "value": "post", "strength": "stated", "phrases": ["x"]}]"#)
        do { _ = try EvidencePack(json: badField); Issue.record("compiled") } catch {
            #expect(error.path == "patterns[0].field" && error.line == 4, "\(error)")
        }
        let badValue = Self.pack(#"[{"id": "a", "field": "system.timing", "value": "soon", "strength": "stated", "phrases": ["x"]}]"#)
        do { _ = try EvidencePack(json: badValue); Issue.record("compiled") } catch {
            #expect(error.path == "patterns[0].value", "\(error)")
        }
        let noPhrase = Self.pack(#"[{"id": "a", "field": "system.timing", "value": "post", "strength": "stated", "phrases": []}]"#)
        #expect(throws: CriteriaPack.CompileError.self) { try EvidencePack(json: noPhrase) }
    }

    /// Declared facts always win; a disagreement is reported; `stated` and `off` choose what counts.
    @Test func declaredFactsWinAndConflictsAreReported() throws {
        let inferred: JSONValue = .array([
            InferredFact(field: "system.timing", value: .string("post"), span: "upload an image", source: "summary", pattern: "p1", strength: .implied).json,
            InferredFact(field: "system.identification_mode", value: .string("one_to_many"), span: "search", source: "summary", pattern: "p2", strength: .implied).json,
            InferredFact(field: "system.reference_database_sources", value: .array([.string("custody_photos")]), span: "mugshots", source: "summary", pattern: "p3", strength: .stated).json,
        ])
        let record: JSONValue = .object([
            ("inferred", inferred),
            ("operator", .object([("kind", .string("law_enforcement"))])),
            ("system", .object([("type", .string("facial_recognition")), ("timing", .string("real_time"))])),
        ])
        let set = CriteriaSet.builtIn
        let all = set.assess(record, asOf: testDate)
        #expect(all.inferred.map(\.field) == ["system.identification_mode", "system.reference_database_sources"])
        #expect(all.conflicts.count == 1 && all.conflicts[0].declared == .string("real_time") && all.conflicts[0].inferred.field == "system.timing")
        let annex = try #require(all.findings.first { $0.ruleID == "ai-act-annex-iii-1-a" && $0.outcome == .fired })
        #expect(annex.inferred == ["system.identification_mode"], "the finding says which of its facts were inferred")
        #expect(all.restsOnInferred && all.verdict == .highRisk)
        let json = all.canonicalJSON.canonicalString
        #expect(json.contains(#""rests_on":"inferred""#) && json.contains(#""conflicts":[{"declared":"real_time""#))
        #expect(json.contains(#""facts":{"system.identification_mode":"one_to_many","system.type":"facial_recognition"},"inferred":["system.identification_mode"]"#))
        #expect(all.canonicalBytes == all.canonicalJSON.canonicalBytes, "the fast writer agrees")
        let stated = set.assess(record, asOf: testDate, evidence: .stated)
        #expect(stated.inferred.map(\.field) == ["system.reference_database_sources"])
        let off = set.assess(record, asOf: testDate, evidence: .off)
        #expect(off.inferred.isEmpty && off.conflicts.isEmpty && !off.restsOnInferred)
        #expect(off.canonicalJSON.canonicalString.contains(#""rests_on":"declared""#))
    }

    /// The built-in pack on the whole Atlas sample: the fast writer agrees with the canonical
    /// encoder on records that carry inferred facts.
    @Test func theFastWriterAgreesOnRecordsWithInferredFacts() throws {
        let pack = EvidencePack.builtIn
        var seen = 0
        for summary in ["The Palm Springs Police Department is one of more than 275 law enforcement agencies with access to the Face Analysis Comparison & Examination System (FACES), a face recognition program maintained by the Pinellas County Sheriff's Office. Investigators may upload an image to search more than 25-million Florida driver's license photos and mugshots.",
                        "The Ontario Police Department uses Oosto live face recognition at the Ontario International Airport."] {
            var r = record(summary)
            r.set(path: ["operator", "kind"], .string("law_enforcement"))
            let facts = pack.infer(r)
            #expect(!facts.isEmpty)
            r.set(path: ["inferred"], .array(facts.map(\.json)))
            let result = CriteriaSet.builtIn.assess(r, asOf: testDate)
            #expect(result.canonicalBytes == result.canonicalJSON.canonicalBytes)
            #expect(RecordSchema.deployment.validate(r).isEmpty, "a record with inferred facts is valid: \(RecordSchema.deployment.validate(r))")
            seen += result.inferred.count
        }
        #expect(seen >= 7)
    }
}
