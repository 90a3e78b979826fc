import Testing
@testable import Assessment

/// Byte-exact canonical output: the audit trail depends on it never drifting unnoticed. A change
/// here is a change of the stored format and needs a new engine version.
@Suite struct GoldenTests {
    @Test func socialScoringAgainstTheAIAct() throws {
        let pack = try #require(CriteriaPack.builtIn(id: "eu-ai-act-2024"))
        let result = CriteriaSet([pack]).assess(try JSONParser.parse(#"{"system":{"type":"social_scoring"},"decisions":{"scoring_over_time":true,"detrimental_treatment":true}}"#))
        let expected = #"{"engine":"oversight-engine/3","missing":["context.settings","context.use_cases","decisions.profiling","operator.kind","operator.provides_public_service","safeguards.fria_done","safeguards.fria_elements"],"packs":[{"applies":"undetermined","findings":[{"facts":{"decisions.detrimental_treatment":true,"system.type":"social_scoring"},"outcome":"fired","points":100,"rule":"ai-act-5-1-c","severity":"prohibited"}],"pack":{"id":"eu-ai-act-2024","sha256":"\#(pack.sha256Hex)","version":"1.0.0"},"score":100,"verdict":"prohibited"}],"score":100,"verdict":"prohibited"}"#
        #expect(result.canonicalJSON.canonicalString == expected)
    }

    @Test func aLicencePlateReaderAgainstTheBaseline() throws {
        let pack = try #require(CriteriaPack.builtIn(id: "privacy-baseline"))
        let result = CriteriaSet([pack]).assess(try JSONParser.parse(#"{"id":"AOS1","system":{"type":"alpr"},"data":{"retention_days":365,"shared_with":["federal_agencies"]}}"#))
        #expect(result.verdict == .elevated)
        // 25 (retention) + 20 (sharing) + 10 (no accuracy figure); unknowns in this pack add nothing.
        #expect(result.findings.map(\.ruleID) == ["pb-retention-alpr", "pb-accuracy-undocumented", "pb-sharing"])
        #expect(result.score == 55)
        #expect(result.canonicalJSON.canonicalString.hasPrefix(#"{"engine":"oversight-engine/3","missing":["#))
        #expect(result.missing == ["context.people_affected_per_day", "data.categories", "data.combined_with_other_datasets", "data.vendor_access",
                                   "safeguards.demographic_disparity_ratio", "safeguards.human_review", "safeguards.notice", "safeguards.redress"])
    }

    @Test func theSameFactsInAnyOrderGiveTheSameBytes() throws {
        let a = try JSONParser.parse(#"{"system":{"type":"alpr","vendor":"Flock"},"operator":{"country":"US","kind":"law_enforcement"}}"#)
        let b = try JSONParser.parse(#"{ "operator": {"kind":"law_enforcement", "country":"US"}, "system": {"vendor":"Flock", "type":"alpr"} }"#)
        #expect(AuditHash.input(a) == AuditHash.input(b))
        #expect(CriteriaSet.builtIn.assess(a).canonicalJSON.canonicalBytes == CriteriaSet.builtIn.assess(b).canonicalJSON.canonicalBytes)
    }

    /// The fast writer and the generic canonical encoder agree byte for byte.
    @Test func theFastWriterMatchesTheCanonicalEncoder() throws {
        let records = Array(SyntheticDeployments(count: 3_000, seed: 9)) + ruleCases.map { try! JSONParser.parse($0.record) }
        for record in records {
            let result = CriteriaSet.builtIn.assess(record)
            #expect(result.canonicalBytes == result.canonicalJSON.canonicalBytes)
        }
        let hostile = try JSONParser.parse(#"{"id":"\"quoted\\ \u0000 é","system":{"type":"alpr","vendor":"tab\tnew\nline"},"data":{"retention_days":365.5}}"#)
        let result = CriteriaSet.builtIn.assess(hostile)
        #expect(result.canonicalBytes == result.canonicalJSON.canonicalBytes)
    }

    @Test func setHashOfOnePackIsThePacksHash() {
        let pack = CriteriaPack.builtIn[0]
        #expect(CriteriaSet([pack]).sha256 == pack.sha256)
        #expect(CriteriaSet.builtIn.sha256 == AuditHash.sha256(CriteriaPack.builtIn.flatMap(\.sha256)))
    }
}
