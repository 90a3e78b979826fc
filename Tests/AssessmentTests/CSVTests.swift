import Foundation
import Testing
@testable import Assessment

@Suite struct CSVTests {
    func rows(_ text: String) throws -> [CSVRowParser.Row] {
        var parser = CSVRowParser()
        var rows: [CSVRowParser.Row] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let row = try parser.feed(ArraySlice(Array(line.utf8)), number: Int64(i + 1)) { rows.append(row) }
        }
        try parser.finish()
        return rows
    }

    @Test func parsesQuotedAndMultilineFields() throws {
        let parsed = try rows("a,\"b,c\",\"say \"\"hi\"\"\"\n\"multi\nline\",,x\r")
        #expect(parsed.count == 2)
        #expect(parsed[0].fields == ["a", "b,c", "say \"hi\""])
        #expect(parsed[1].fields == ["multi\nline", "", "x"])
        #expect(parsed[1].line == 2)
    }

    @Test func reportsAnUnbalancedQuoteWithItsLine() {
        #expect {
            _ = try rows("a,b\n\"open,c\nd,e")
        } throws: { error in
            (error as? CSVRowParser.Malformed)?.line == 2
        }
    }

    @Test func reportsTextAfterAClosingQuote() {
        #expect(throws: CSVRowParser.Malformed.self) { _ = try rows("\"a\"b,c") }
    }

    @Test func genericLayoutMapsFieldPaths() throws {
        let mapping = try CSVRecordMapping(header: ["id", "system.type", "context.settings", "safeguards.human_review", "context.people_affected_per_day"])
        #expect(mapping.layout == .generic)
        let record = try mapping.record(["r1", "alpr", "publicly_accessible; border", "yes", "1200"]).get()
        #expect(record["system"]?["type"] == .string("alpr"))
        #expect(record["context"]?["settings"] == .array([.string("publicly_accessible"), .string("border")]))
        #expect(record["safeguards"]?["human_review"] == .bool(true))
        #expect(record["context"]?["people_affected_per_day"] == .number(1200))
        #expect(RecordSchema.deployment.validate(record).isEmpty)
    }

    @Test func genericLayoutNamesTheBadCell() throws {
        let mapping = try CSVRecordMapping(header: ["safeguards.notice", "data.retention_days"])
        guard case .failure(let v) = mapping.record(["maybe", "3"]) else { Issue.record("expected failure"); return }
        #expect(v.field == "safeguards.notice")
        guard case .failure(let w) = mapping.record(["yes"]) else { Issue.record("expected failure"); return }
        #expect(w.message.contains("1 fields"))
    }

    @Test func unknownColumnsAreRefused() {
        #expect(throws: CSVRecordMapping.HeaderError.self) { _ = try CSVRecordMapping(header: ["system.tpye"]) }
    }

    /// The real data: every row of the Atlas of Surveillance sample maps to a valid record.
    @Test func atlasSampleMapsToValidRecords() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Samples/atlas-of-surveillance-sample.csv")
        let text = try String(contentsOf: url, encoding: .utf8)
        let parsed = try rows(text.hasSuffix("\n") ? String(text.dropLast()) : text)
        let mapping = try CSVRecordMapping(header: parsed[0].fields)
        #expect(mapping.layout == .atlas)
        var types: [String: Int] = [:]
        for row in parsed.dropFirst() {
            let record = try mapping.record(row.fields).get()
            #expect(RecordSchema.deployment.validate(record).isEmpty, "line \(row.line)")
            #expect(record["operator"]?["country"] == .string("US"))
            types[record["system"]?["type"]?.stringValue ?? "unknown", default: 0] += 1
        }
        #expect(parsed.count - 1 == 652)
        #expect(types["alpr"] == 212)
        #expect(types["facial_recognition"] == 44)
    }
}
