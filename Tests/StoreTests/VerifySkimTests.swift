import Testing
import Assessment
@testable import AuditStore

/// `audit verify`'s skimmed column check says what the parsed one says, on agreeing rows and on
/// every column changed (no database: the rows are made here).
@Suite struct VerifySkimTests {
    @Test func theSkimmedCheckIsTheParsedCheck() throws {
        let set = CriteriaSet.builtIn
        var checked = 0
        for (n, record) in SyntheticDeployments(count: 200, seed: 21).enumerated() {
            let result = set.assess(record, asOf: testDate).canonicalBytes
            let parsed = try JSONParser.parse(result)
            var packs: [JSONValue] = []
            if case .array(let list)? = parsed["packs"] { packs = list }
            let applies = packs.compactMap { $0["applies"]?.stringValue.flatMap(Applicability.init(rawValue:)) }
            func row(verdict: String? = nil, worstCase: String?? = nil, determined: Bool?? = nil, score: Int? = nil, applies override: String? = nil,
                     engine: String? = nil, result text: [UInt8]? = nil) -> StoredAssessment {
                StoredAssessment(seq: Int64(n + 1), recordID: nil, verdict: verdict ?? parsed["verdict"]!.stringValue!,
                                 worstCase: worstCase ?? parsed["worst_case"]?.stringValue,
                                 determined: determined ?? parsed["determined"].map { $0 == .bool(true) },
                                 score: score ?? parsed["score"]!.intValue!, applies: override ?? Applicability.overall(applies).rawValue,
                                 engine: engine ?? parsed["engine"]!.stringValue!, criteriaSHA256: [], inputSHA256: [], rowSHA256: [],
                                 result: text ?? result, record: nil)
            }
            let variants = [
                row(), row(verdict: "no_such_verdict"), row(worstCase: .some(nil)), row(worstCase: "prohibited_or_else"),
                row(determined: .some(nil)), row(determined: .some(parsed["determined"] != .bool(true))), row(score: -7),
                row(applies: "nowhere"), row(engine: "0"),
                row(result: Array(String(decoding: result, as: UTF8.self).replacingOccurrences(of: "\"verdict\"", with: " \"verdict\" ").utf8)),
                row(result: Array(result.dropLast())), row(result: Array("[]".utf8)),
                row(result: Array(#"{"verdict":"named twice","#.utf8) + result.dropFirst()),
            ]
            for variant in variants {
                let skimmed = AuditStore.skimmedColumnDisagreeing(with: variant)
                #expect(skimmed == nil || skimmed! == AuditStore.parsedColumnDisagreeing(with: variant), "record \(n)")
                #expect(AuditStore.columnDisagreeing(with: variant) == AuditStore.parsedColumnDisagreeing(with: variant))
                if skimmed != nil { checked += 1 }
            }
            #expect(AuditStore.columnDisagreeing(with: variants[0]) == nil)
        }
        #expect(checked == 200 * 10, "the skimmer decided all but the texts it cannot walk")
    }
}
