import Testing
@testable import Assessment

@Suite struct PackCompilerTests {
    func pack(_ when: String, extra: String = "") -> String {
        """
        {
          "id": "p", "version": "1", "title": "t",\(extra)
          "rules": [
            {
              "id": "r", "title": "t", "citation": "c", "severity": "high_risk", "points": 1,
              "rationale": "r", "remediation": "r",
              "when": \(when)
            }
          ]
        }
        """
    }

    func error(_ text: String) -> CriteriaPack.CompileError? {
        do { _ = try CriteriaPack(json: text); return nil } catch { return error }
    }

    @Test func errorsNameThePathAndTheLine() throws {
        let e = try #require(error(pack(#"{"all": [{"field": "system.type", "equals": "alpr"}, {"field": "system.kind", "equals": "x"}]}"#)))
        #expect(e.path == "rules[0].when.all[1].field")
        #expect(e.line == 7)
        #expect(e.message.contains("not a field of the deployment schema"))
    }

    @Test func typosInValuesAreCaught() throws {
        let e = try #require(error(pack(#"{"field": "system.type", "equals": "facial_recogniton"}"#)))
        #expect(e.message.contains("is not a value of system.type"))
        #expect(e.message.contains("facial_recognition"))
    }

    @Test func structuralErrorsComeFromThePackSchema() throws {
        let e = try #require(error(#"{"id": "p", "version": "1", "title": "t", "rules": [{"id": "r"}]}"#))
        #expect(e.path.hasPrefix("rules[0]"))
        #expect(e.message.contains("required"))
        #expect(error(#"{"id": "p", "version": "1", "title": "t", "rules": [], "colour": 1}"#)?.path == "colour")
    }

    @Test func syntaxErrorsGiveLineAndColumn() throws {
        let e = try #require(error("{\n  \"id\": \"p\",\n  \"version\": 1,,\n}"))
        #expect(e.line == 3)
        #expect(e.message.contains("column"))
    }

    @Test func operatorsAndShapesAreChecked() {
        #expect(error(pack(#"{"field": "system.type", "contains": "alpr"}"#))?.message.contains("needs an array field") == true)
        #expect(error(pack(#"{"field": "system.type", "like": "alpr"}"#))?.message.contains("unknown operator") == true)
        #expect(error(pack(#"{"field": "context.people_affected_per_day", "gte": "many"}"#))?.message.contains("takes a number") == true)
        #expect(error(pack(#"{"at_least": 3, "of": [{"field": "system.type", "exists": true}]}"#))?.path == "rules[0].when.at_least")
        #expect(error(pack(#"{"ref": "nothing"}"#))?.message.contains("no definition") == true)
        #expect(error(pack(#"{"field": "context.people_affected_per_day", "gte": 1000}"#)) == nil)
    }

    @Test func definitionsAreReusable() throws {
        let text = pack(#"{"ref": "rbi"}"#, extra: #" "definitions": {"rbi": {"field": "system.type", "equals": "remote_biometric_identification"}},"#)
        let compiled = try CriteriaPack(json: text)
        #expect(compiled.assess(try JSONParser.parse(#"{"system":{"type":"remote_biometric_identification"}}"#), asOf: testDate).verdict == .highRisk)
    }

    @Test func definitionsMayComeInAnyOrderButNotInCycles() throws {
        let forward = pack(#"{"ref": "a"}"#, extra: #" "definitions": {"a": {"ref": "b"}, "b": {"field": "system.type", "equals": "alpr"}},"#)
        #expect(throws: Never.self) { _ = try CriteriaPack(json: forward) }
        let cycle = pack(#"{"ref": "a"}"#, extra: #" "definitions": {"a": {"ref": "b"}, "b": {"not": {"ref": "a"}}},"#)
        #expect(error(cycle)?.message.contains("refers to itself") == true)
    }

    @Test func aStoredPackCompilesFromItsCanonicalText() throws {
        for pack in CriteriaPack.builtIn {
            let again = try CriteriaPack(json: pack.canonicalText)
            #expect(again.sha256 == pack.sha256)
            #expect(again.rules.count == pack.rules.count)
        }
    }

    @Test func atLeastIsThreeValued() throws {
        let compiled = try CriteriaPack(json: pack(#"{"at_least": 2, "of": [{"field": "safeguards.notice", "equals": false}, {"field": "safeguards.redress", "equals": false}, {"field": "safeguards.human_review", "equals": false}]}"#))
        func verdict(_ s: String) throws -> Verdict { compiled.assess(try JSONParser.parse(s), asOf: testDate).verdict }
        #expect(try verdict(#"{"safeguards":{"notice":false,"redress":false}}"#) == .highRisk)
        #expect(try verdict(#"{"safeguards":{"notice":true,"redress":true}}"#) == .minimal)
        let open = compiled.assess(try JSONParser.parse(#"{"safeguards":{"notice":false}}"#), asOf: testDate)
        #expect(open.findings.first?.outcome == .needsInformation)
        #expect(open.findings.first?.missing == ["safeguards.human_review", "safeguards.redress"])
    }

    @Test func theBuiltInPacksCompileAndCiteEveryRule() {
        #expect(CriteriaPack.builtIn.map(\.id) == ["eu-ai-act-2024", "gdpr-dpia", "privacy-baseline"])
        for pack in CriteriaPack.builtIn {
            for rule in pack.rules { #expect(!rule.citation.isEmpty && !rule.rationale.isEmpty && !rule.remediation.isEmpty) }
        }
    }
}
