import Testing
@testable import Assessment

/// The first rules, each case with the article that justifies its expectation.
@Suite struct EUAIActPackTests {
    let pack = CriteriaPack.builtIn(id: "eu-ai-act-2024")!

    func assess(_ text: String) throws -> AssessmentResult {
        pack.assess(try JSONParser.parse(text))
    }

    func outcome(_ result: AssessmentResult, _ rule: String) -> Finding.Outcome? {
        result.findings.first { $0.ruleID == rule }?.outcome
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let record: String
        let verdict: Verdict
        let fired: [String]
        let citation: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "live face recognition by police in a square, no exception",
             record: #"{"operator":{"kind":"law_enforcement","country":"DE"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"real_time","training_data_source":"licensed"},"context":{"settings":["publicly_accessible"],"law_enforcement_objective":"general"}}"#,
             verdict: .prohibited, fired: ["ai-act-5-1-h", "ai-act-annex-iii-1-a"], citation: "Art. 5(1)(h)"),
        Case(name: "missing-child search with authorisation, FRIA and registration is not prohibited",
             record: #"{"operator":{"kind":"law_enforcement","country":"FR"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"real_time","training_data_source":"licensed"},"context":{"settings":["publicly_accessible"],"law_enforcement_objective":"victim_search"},"safeguards":{"prior_authorisation":true,"fria_done":true,"eu_database_registered":true}}"#,
             verdict: .highRisk, fired: ["ai-act-annex-iii-1-a"], citation: "Art. 5(1)(h)(i), 5(2)-(3); Annex III 1(a)"),
        Case(name: "post (not real-time) identification is not 5(1)(h)",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"post","training_data_source":"own_collection"},"context":{"settings":["publicly_accessible"]}}"#,
             verdict: .highRisk, fired: ["ai-act-annex-iii-1-a"], citation: "Art. 5(1)(h) covers real-time only; Annex III 1(a)"),
        Case(name: "one-to-one verification is not remote biometric identification",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"facial_recognition","identification_mode":"one_to_one_verification","timing":"real_time","training_data_source":"licensed"},"context":{"settings":["border"]}}"#,
             verdict: .minimal, fired: [], citation: "Art. 3(36), Annex III 1(a) excludes verification"),
        Case(name: "emotion recognition of employees",
             record: #"{"system":{"type":"emotion_recognition"},"context":{"settings":["workplace"],"medical_or_safety_reason":false},"safeguards":{"notice":true}}"#,
             verdict: .prohibited, fired: ["ai-act-5-1-f"], citation: "Art. 5(1)(f)"),
        Case(name: "emotion recognition for driver safety is not 5(1)(f)",
             record: #"{"system":{"type":"emotion_recognition"},"context":{"settings":["workplace"],"medical_or_safety_reason":true},"safeguards":{"notice":true}}"#,
             verdict: .minimal, fired: [], citation: "Art. 5(1)(f), medical or safety exception"),
        Case(name: "emotion recognition in a shop, people not informed",
             record: #"{"system":{"type":"emotion_recognition"},"context":{"settings":["publicly_accessible"]},"safeguards":{"notice":false}}"#,
             verdict: .limited, fired: ["ai-act-50-3"], citation: "Art. 50(3)"),
        Case(name: "social scoring with detrimental treatment",
             record: #"{"system":{"type":"social_scoring"},"decisions":{"scoring_over_time":true,"detrimental_treatment":true}}"#,
             verdict: .prohibited, fired: ["ai-act-5-1-c"], citation: "Art. 5(1)(c)"),
        Case(name: "face database from untargeted scraping",
             record: #"{"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"post","training_data_source":"untargeted_scraping"}}"#,
             verdict: .prohibited, fired: ["ai-act-5-1-e", "ai-act-annex-iii-1-a"], citation: "Art. 5(1)(e)"),
        Case(name: "a licence-plate reader cannot be any of these practices",
             record: #"{"operator":{"kind":"law_enforcement","country":"US"},"system":{"type":"alpr"}}"#,
             verdict: .minimal, fired: [], citation: "Art. 5 and Annex III 1 concern biometrics, emotion and social scoring"),
    ]

    @Test(arguments: cases)
    func verdicts(_ c: Case) throws {
        let result = try assess(c.record)
        #expect(result.verdict == c.verdict, "\(c.name): \(c.citation)")
        #expect(result.findings.filter { $0.outcome == .fired }.map(\.ruleID).sorted() == c.fired.sorted(), "\(c.name)")
    }

    @Test func unknownTimingNeedsInformationNamingTheFields() throws {
        let result = try assess(#"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_many"},"context":{"settings":["publicly_accessible"]}}"#)
        #expect(result.verdict == .insufficientInformation)
        let finding = result.findings.first { $0.ruleID == "ai-act-5-1-h" }
        #expect(finding?.outcome == .needsInformation)
        #expect(finding?.missing.contains("system.timing") == true)
        #expect(finding?.missing.contains("context.law_enforcement_objective") == true)
        #expect(finding?.citation.contains("Art. 5(1)(h)") == true)
    }

    @Test func absentIsUnknownNeverFalse() throws {
        // Nothing known about a face recognition system: it may be prohibited, so no "minimal".
        let result = try assess(#"{"system":{"type":"facial_recognition"}}"#)
        #expect(result.verdict == .insufficientInformation)
    }

    @Test func appliesAsBenchmarkOutsideTheUnion() throws {
        #expect(try assess(#"{"operator":{"country":"US"}}"#).applies == .benchmark)
        #expect(try assess(#"{"operator":{"country":"DE"}}"#).applies == .binding)
        #expect(try assess(#"{}"#).applies == .undetermined)
    }

    @Test func isDeterministic() throws {
        for record in SyntheticDeployments(count: 200, seed: 7) {
            #expect(pack.assess(record).canonicalJSON.canonicalBytes == pack.assess(record).canonicalJSON.canonicalBytes)
        }
    }

    @Test func goldenCanonicalOutput() throws {
        let result = try assess(#"{"system":{"type":"social_scoring"},"decisions":{"scoring_over_time":true,"detrimental_treatment":true}}"#)
        #expect(result.canonicalJSON.canonicalString == #"{"applies":"undetermined","findings":[{"citation":"Regulation (EU) 2024/1689, Art. 5(1)(c)","missing":[],"outcome":"fired","points":100,"rule":"ai-act-5-1-c","severity":"prohibited","title":"Social scoring leading to detrimental or disproportionate treatment"}],"pack":{"id":"eu-ai-act-2024","version":"0.1.0"},"score":100,"verdict":"prohibited"}"#)
    }

    @Test func packCompilationCatchesTypos() {
        func compile(_ when: String) throws {
            _ = try CriteriaPack(json: #"{"id":"p","version":"1","title":"t","rules":[{"id":"r","title":"t","citation":"c","severity":"high_risk","points":1,"rationale":"r","remediation":"r","when":"# + when + "}]}")
        }
        #expect(throws: CriteriaPack.CompileError.self) { try compile(#"{"field":"system.kind","equals":"x"}"#) }
        #expect(throws: CriteriaPack.CompileError.self) { try compile(#"{"field":"system.type","equals":"facial_recogniton"}"#) }
        #expect(throws: CriteriaPack.CompileError.self) { try compile(#"{"field":"system.type","contains":"alpr"}"#) }
        #expect(throws: CriteriaPack.CompileError.self) { try compile(#"{"field":"system.type","like":"alpr"}"#) }
        #expect(throws: Never.self) { try compile(#"{"field":"context.people_affected_per_day","gte":1000}"#) }
    }

    @Test func packHashIsOverCanonicalJSON() {
        #expect(pack.sha256 == AuditHash.sha256(Array(pack.canonicalText.utf8)))
        #expect(pack.sha256.count == 32)
    }
}
