import Testing
import Assessment
import Reporting

@Suite struct RequestDraftTests {
    let rules: [String: RequestDraft.Rule] = [
        "ai-act-5-1-h": .init(id: "ai-act-5-1-h", title: "Real-time RBI", citation: "Art. 5(1)(h)", severity: .prohibited, binds: false),
        "ai-act-annex-iii-1-a": .init(id: "ai-act-annex-iii-1-a", title: "RBI is high-risk", citation: "Annex III 1(a)", severity: .highRisk, binds: false),
        "pb-retention-biometric": .init(id: "pb-retention-biometric", title: "Kept too long", citation: "GDPR Art. 5(1)(e)", severity: .elevated, binds: true),
    ]

    func asked(_ record: String, _ rank: Int, _ field: String, _ rules: [String], _ worst: Verdict, system: String = "Face Recognition") -> RequestDraft.Asked {
        .init(recordID: record, system: system, rank: rank, fields: [field], question: "Q \(field)?", rules: rules, ifWorst: worst)
    }

    @Test func eachQuestionIsAskedOnceWithEveryDeploymentItConcerns() {
        let draft = RequestDraft(operator: "Test PD, NY", asked: [
            asked("A", 2, "data.retention_days", ["pb-retention-biometric"], .elevated),
            asked("A", 1, "system.timing", ["ai-act-5-1-h"], .prohibited),
            asked("B", 3, "data.retention_days", ["pb-retention-biometric"], .elevated, system: "Drones"),
            asked("B", 1, "system.functions", ["ai-act-5-1-h", "ai-act-annex-iii-1-a"], .highRisk, system: "Drones"),
        ], rules: rules)
        #expect(draft.deployments == 2)
        #expect(draft.items.map(\.fields) == [["system.timing"], ["system.functions"], ["data.retention_days"]],
                "the most severe an answer could settle first")
        let retention = draft.items[2]
        #expect(retention.deployments.map(\.id) == ["A", "B"] && retention.bestRank == 2)
        #expect(draft.items[1].lead.id == "ai-act-5-1-h" && draft.items[1].others.map(\.id) == ["ai-act-annex-iii-1-a"])
    }

    @Test func aPackThatDoesNotBindIsAStandardNotABreach() {
        let draft = RequestDraft(operator: "Test PD", asked: [
            asked("A", 1, "system.timing", ["ai-act-5-1-h"], .prohibited),
            asked("A", 2, "data.retention_days", ["pb-retention-biometric"], .elevated),
        ], rules: rules)
        #expect(RequestDraft.why(draft.items[0]) == "Art. 5(1)(h) sets a recognised standard here, not a legal obligation of this operator: Real-time RBI; the answer could make the deployment prohibited.")
        #expect(RequestDraft.why(draft.items[1]) == "It decides whether GDPR Art. 5(1)(e) is met (Kept too long); the answer could make the deployment elevated.")
        #expect(draft.markdown.contains("## 1. Q system.timing?\n\n- Why it matters: Art. 5(1)(h) sets a recognised standard"))
        #expect(draft.markdown.contains("not legal advice"))
    }

    @Test func recordTextIsEscapedInMarkdownAndNeutralisedInCSV() throws {
        let draft = RequestDraft(operator: "<script>alert(1)</script> # PD\n- [x](http://evil)", asked: [
            asked("=HYPERLINK(\"http://evil\")", 1, "system.timing", ["ai-act-5-1-h"], .prohibited, system: "*Cams*|`x`"),
        ], rules: rules)
        let md = draft.markdown
        #expect(!md.contains("<script>") && md.contains("\\<script\\>"))
        #expect(!md.contains("\n- [x]") && md.contains("\\[x\\]"))
        #expect(md.contains("\\*Cams\\*\\|\\`x\\`"))
        // A line break inside a field stays inside its quotes (RFC 4180).
        #expect(draft.csv.contains("\"<script>alert(1)</script> # PD\n- [x](http://evil)\""))
        #expect(draft.csv.contains(",\"'=HYPERLINK(\"\"http://evil\"\")\"\n"), "a formula is neutralised and quoted: \(draft.csv)")
        guard case .array(let questions)? = draft.json["questions"], case .array(let deployments)? = questions.first?["deployments"] else {
            Issue.record("no questions in \(draft.json.canonicalString)"); return
        }
        #expect(deployments.first?["record_id"] == .string("=HYPERLINK(\"http://evil\")"), "JSON keeps the text exact")
    }
}
