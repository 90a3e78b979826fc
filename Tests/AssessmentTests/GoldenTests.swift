import Testing
@testable import Assessment

/// Byte-exact canonical output: the audit trail depends on it never drifting unnoticed. A change
/// here is a change of the stored format and needs a new engine version.
@Suite struct GoldenTests {
    @Test func socialScoringAgainstTheAIAct() throws {
        let pack = try #require(CriteriaPack.builtIn(id: "eu-ai-act-2024"))
        let result = CriteriaSet([pack]).assess(try JSONParser.parse(#"{"system":{"type":"social_scoring"},"decisions":{"scoring_over_time":true,"detrimental_treatment":true,"detriment_disproportionate":true}}"#), asOf: testDate)
        let expected = #"{"as_of":"2026-12-01","determined":true,"engine":"oversight-engine/4","packs":[{"applies":"undetermined","determined":true,"findings":[{"facts":{"decisions.detriment_disproportionate":true,"decisions.detrimental_treatment":true,"system.type":"social_scoring"},"outcome":"fired","points":100,"rule":"ai-act-5-1-c","severity":"prohibited"}],"pack":{"id":"eu-ai-act-2024","sha256":"\#(pack.sha256Hex)","version":"2.0.0"},"questions":[],"rests_on":"declared","score":100,"verdict":"prohibited","worst_case":"prohibited","worst_case_score":100}],"questions":[],"rests_on":"declared","score":100,"verdict":"prohibited","worst_case":"prohibited","worst_case_score":100}"#
        #expect(result.canonicalJSON.canonicalString == expected, "\(result.canonicalJSON.canonicalString)")
    }

    @Test func aLicencePlateReaderAgainstTheBaseline() throws {
        let pack = try #require(CriteriaPack.builtIn(id: "privacy-baseline"))
        let result = CriteriaSet([pack]).assess(try JSONParser.parse(#"{"id":"AOS1","system":{"type":"alpr"},"data":{"retention_days":365,"shared_with":["federal_agencies"]}}"#), asOf: testDate)
        #expect(result.verdict == .elevated)
        // 25 (retention) + 20 (sharing) + 10 (no accuracy figure); the open rules add to the worst case only.
        #expect(result.findings.filter { $0.outcome == .fired }.map(\.ruleID) == ["pb-retention-alpr", "pb-accuracy-undocumented", "pb-sharing"])
        #expect(result.score == 55)
        #expect(result.canonicalJSON.canonicalString.hasPrefix(#"{"as_of":"2026-12-01","determined":true,"engine":"oversight-engine/4","packs":["#))
        // Nothing in the baseline is more severe than elevated: nothing to ask, though rules are open.
        #expect(result.worstCase == .elevated && result.determined && result.questions.isEmpty)
        #expect(result.worstCaseScore > result.score)
        #expect(result.packs[0].findings.filter { $0.outcome == .needsInformation }.map(\.ruleID).contains("pb-no-human-review"))
    }

    @Test func theSameFactsInAnyOrderGiveTheSameBytes() throws {
        let a = try JSONParser.parse(#"{"system":{"type":"alpr","vendor":"Flock"},"operator":{"country":"US","kind":"law_enforcement"}}"#)
        let b = try JSONParser.parse(#"{ "operator": {"kind":"law_enforcement", "country":"US"}, "system": {"vendor":"Flock", "type":"alpr"} }"#)
        #expect(AuditHash.input(a) == AuditHash.input(b))
        #expect(CriteriaSet.builtIn.assess(a, asOf: testDate).canonicalJSON.canonicalBytes == CriteriaSet.builtIn.assess(b, asOf: testDate).canonicalJSON.canonicalBytes)
    }

    /// The fast writer and the generic canonical encoder agree byte for byte.
    @Test func theFastWriterMatchesTheCanonicalEncoder() throws {
        let records = Array(SyntheticDeployments(count: 3_000, seed: 9)) + ruleCases.map { try! JSONParser.parse($0.record) }
        for record in records {
            let result = CriteriaSet.builtIn.assess(record, asOf: testDate)
            #expect(result.canonicalBytes == result.canonicalJSON.canonicalBytes)
        }
        let hostile = try JSONParser.parse(#"{"id":"\"quoted\\ \u0000 é","system":{"type":"alpr","vendor":"tab\tnew\nline"},"data":{"retention_days":365.5}}"#)
        let result = CriteriaSet.builtIn.assess(hostile, asOf: testDate)
        #expect(result.canonicalBytes == result.canonicalJSON.canonicalBytes)
    }

    @Test func setHashOfOnePackIsThePacksHash() {
        let pack = CriteriaPack.builtIn[0]
        #expect(CriteriaSet([pack]).sha256 == pack.sha256)
        #expect(CriteriaSet.builtIn.sha256 == AuditHash.sha256(CriteriaPack.builtIn.flatMap(\.sha256)))
    }
}

/// The day the assessment tests apply the law as of: after every rule of the built-in packs
/// applies (the AI Act's Annex III obligations from 2 August 2026).
let testDate = CalendarDate("2026-12-01")!
