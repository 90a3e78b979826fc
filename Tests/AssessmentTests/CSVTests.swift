import Foundation
import Testing
@testable import Assessment

@Suite struct CSVTests {
    func outcomes(_ text: String, maximumRowLines: Int = 200) -> [Result<CSVRowParser.Row, CSVRowParser.Malformed>] {
        var parser = CSVRowParser()
        parser.maximumRowLines = maximumRowLines
        var out: [Result<CSVRowParser.Row, CSVRowParser.Malformed>] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            out += parser.feed(ArraySlice(Array(line.utf8)), number: Int64(i + 1))
        }
        return out + parser.finish()
    }

    func rows(_ text: String) throws -> [CSVRowParser.Row] {
        try outcomes(text).map { try $0.get() }
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

    /// A quote that never closes costs its own line, not the rest of the file: reading resumes
    /// on the next line, and the message says where the quote opened and how far it ran.
    @Test func anUnterminatedQuoteIsOneRejectionAndReadingRecovers() {
        let atEnd = outcomes("a,b\n\"open,c\nd,e\nf,g")
        #expect(atEnd.count == 4)
        guard case .failure(let error) = atEnd[1] else { Issue.record("\(atEnd)"); return }
        #expect(error.line == 2 && error.message.contains("never closes") && error.message.contains("resumes on line 3"))
        #expect(atEnd.compactMap { try? $0.get().fields } == [["a", "b"], ["d", "e"], ["f", "g"]])
        // Mid-file: the open quote is given up after the bound, and later rows come through.
        var text = "h\n\"x\n"
        for n in 0..<20 { text += "row\(n),\(n)\n" }
        let mid = outcomes(text, maximumRowLines: 5)
        guard case .failure(let late) = mid[1] else { Issue.record("\(mid)"); return }
        #expect(late.line == 2 && late.message.contains("no closing quote in 6 lines"), "\(late.message)")
        #expect(mid.compactMap { try? $0.get() }.filter { $0.fields != [""] }.count == 21, "the header and all 20 rows after the bad line")
    }

    @Test func duplicateColumnsAreRefusedNamingBoth() {
        #expect { _ = try CSVRecordMapping(header: ["system.type", "operator.country", "system.type"]) } throws: {
            "\($0)".contains("columns 1 and 3 are both named \"system.type\"")
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
