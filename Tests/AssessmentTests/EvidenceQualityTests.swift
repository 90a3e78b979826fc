import Foundation
import Testing
@testable import Assessment

/// The built-in evidence pack against 160 Atlas summaries labelled by hand, field by field, with
/// the span each fact rests on (Tests/AssessmentTests/Fixtures/atlas-labels.jsonl). Records split
/// by AOS number: odd numbers are held out. Precision matters more than recall: a wrong
/// inferred fact in an audit trail is worse than a missing one.
@Suite struct EvidenceQualityTests {
    struct Labelled {
        let id: String
        let record: JSONValue
        let labels: [(field: String, values: Set<JSONValue>)]
    }

    /// The agency of each Atlas record, by AOS number, from the sample the labels were drawn
    /// from: `oversight import atlas` puts it in operator.name, which patterns may read.
    static let agencies: [String: String] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Samples/atlas-of-surveillance-sample.csv").standardized
        guard let bytes = try? Data(contentsOf: url) else { return [:] }
        var parser = CSVRowParser()
        var rows: [[String]] = []
        for (n, line) in Array(bytes).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            for case .success(let row) in parser.feed(trimmed, number: Int64(n + 1)) { rows.append(row.fields) }
        }
        guard !rows.isEmpty else { return [:] }
        let header = rows.removeFirst()
        guard let id = header.firstIndex(of: "AOSNUMBER"), let agency = header.firstIndex(of: "Agency") else { return [:] }
        var out: [String: String] = [:]
        for row in rows where row.count > max(id, agency) { out[row[id]] = row[agency] }
        return out
    }()

    static let labelled: [Labelled] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/atlas-labels.jsonl")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { line in
            let doc = try! JSONParser.parse(String(line))
            let summary = doc["summary"]!.stringValue!
            var system: [(key: String, value: JSONValue)] = []
            if let type = AtlasOfSurveillance.systemTypes[doc["technology"]!.stringValue!] { system.append(("type", .string(type))) }
            var members: [(key: String, value: JSONValue)] = [("summary", .string(summary)), ("system", .object(system))]
            if let agency = agencies[doc["id"]!.stringValue!] { members.append(("operator", .object([("name", .string(agency))]))) }
            let record = JSONValue.object(members)
            var byField: [String: Set<JSONValue>] = [:]
            if case .array(let labels)? = doc["labels"] {
                for label in labels {
                    let field = label["field"]!.stringValue!
                    #expect(summary.contains(label["span"]!.stringValue!), "a label's span is verbatim: \(doc["id"]!)")
                    let values: [JSONValue]
                    if case .array(let items) = label["value"]! { values = items } else { values = [label["value"]!] }
                    byField[field, default: []].formUnion(values)
                }
            }
            return Labelled(id: doc["id"]!.stringValue!, record: record, labels: byField.map { ($0.key, $0.value) })
        }
    }()

    struct Score { var tp = 0, fp = 0, fn = 0
        var precision: Double { tp + fp == 0 ? 1 : Double(tp) / Double(tp + fp) }
        var recall: Double { tp + fn == 0 ? 1 : Double(tp) / Double(tp + fn) }
    }

    /// Per field (stated facts only when `stated`), over the records of one half.
    func score(_ records: [Labelled], stated: Bool) -> (byField: [String: Score], byWording: [String: Score]) {
        var byField: [String: Score] = [:], byWording: [String: Score] = [:]
        let fields = Set(EvidencePack.builtIn.patterns.map(\.field))
        for r in records {
            let inferred = EvidencePack.builtIn.infer(r.record).filter { !stated || $0.strength == .stated }
            for field in fields {
                let truth = r.labels.first { $0.field == field }?.values ?? []
                var predicted: Set<JSONValue> = []
                for fact in inferred where fact.field == field {
                    let values: [JSONValue]
                    if case .array(let items) = fact.value { values = items } else { values = [fact.value] }
                    for v in values {
                        predicted.insert(v)
                        let right = truth.contains(v)
                        byWording["\(field) \"\(fact.span)\"", default: Score()].tp += right ? 1 : 0
                        byWording["\(field) \"\(fact.span)\"", default: Score()].fp += right ? 0 : 1
                    }
                }
                // Recall counts only facts the pack is meant to infer: a system.functions value
                // that is the record's own system.type is declared, not for inference.
                let type = r.record["system"]?["type"]
                let expected = field == "system.functions" ? truth.filter { $0 != type && $0 != .string("video_analytics") } : truth
                byField[field, default: Score()].tp += predicted.intersection(truth).count
                byField[field, default: Score()].fp += predicted.subtracting(truth).count
                byField[field, default: Score()].fn += expected.subtracting(predicted).count
            }
        }
        return (byField, byWording)
    }

    @Test func precisionAndRecallOnTheHeldOutHalf() throws {
        #expect(Self.agencies.count >= 600, "the sample's agencies are read (operator.name)")
        let records = Self.labelled
        #expect(records.count >= 150, "at least 150 labelled records")
        let heldOut = records.filter { Int($0.id.dropFirst(3)).map { $0 % 2 == 1 } ?? false }
        let written = records.filter { Int($0.id.dropFirst(3)).map { $0 % 2 == 0 } ?? false }
        #expect(heldOut.count > 60 && written.count > 60)
        for (name, half) in [("held out", heldOut), ("written on", written)] {
            for stated in [true, false] {
                let (byField, byWording) = score(half, stated: stated)
                let total = byField.values.reduce(Score()) { Score(tp: $0.tp + $1.tp, fp: $0.fp + $1.fp, fn: $0.fn + $1.fn) }
                print("evidence quality, \(name) half (\(half.count) records), \(stated ? "stated facts" : "all facts"): precision \(String(format: "%.3f", total.precision)) (\(total.tp) right, \(total.fp) wrong), recall \(String(format: "%.3f", total.recall))")
                for (field, s) in byField.sorted(by: { $0.key < $1.key }) {
                    print("  \(field): precision \(String(format: "%.3f", s.precision)) recall \(String(format: "%.3f", s.recall)) (tp \(s.tp), fp \(s.fp), fn \(s.fn))")
                }
                if !stated { for (wording, s) in byWording.sorted(by: { $0.key < $1.key }) { print("    \(wording): \(s.tp) right, \(s.fp) wrong") } }
                if stated && name == "held out" {
                    #expect(total.precision >= 0.95, "precision on stated facts, held out: \(total.precision)")
                }
                if name == "held out" { #expect(total.precision >= 0.9, "precision on all facts, held out: \(total.precision)") }
            }
        }
    }

    /// Every fact inferred from the Atlas sample rests on a span that is a verbatim substring of
    /// the text it names (or, for the register, the passage of the entry's source).
    @Test func everySpanInTheSampleIsVerbatim() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Samples/atlas-of-surveillance-sample.csv")
        let text = try String(contentsOf: url, encoding: .utf8)
        var parser = CSVRowParser()
        var rows: [CSVRowParser.Row] = []
        let lines = (text.hasSuffix("\n") ? String(text.dropLast()) : text).split(separator: "\n", omittingEmptySubsequences: false)
        for (i, line) in lines.enumerated() {
            for row in parser.feed(Array(line.utf8)[...], number: Int64(i + 1)) { rows.append(try row.get()) }
        }
        for row in parser.finish() { rows.append(try row.get()) }
        let mapping = try CSVRecordMapping(header: rows[0].fields)
        var checked = 0, facts = 0
        for row in rows.dropFirst() {
            let record = try mapping.record(row.fields).get()
            for fact in EvidencePack.builtIn.infer(record) {
                facts += 1
                if fact.source.hasPrefix("register:") {
                    let entry = try #require(EvidencePack.builtIn.register.first { "register:\($0.id)" == fact.source })
                    #expect(fact.span == entry.passage)
                } else {
                    let text = try #require(EvidencePack.text(of: fact.source, in: record))
                    #expect(text.contains(fact.span), "\(fact.span) is not in \(fact.source) of \(record["id"] ?? .null)")
                }
            }
            checked += 1
        }
        #expect(checked == 652 && facts > 80, "\(checked) rows, \(facts) facts")
    }
}
