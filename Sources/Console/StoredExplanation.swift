public import Assessment
public import AuditStore
import Foundation
import Reporting

/// A stored assessment explained again: its record as submitted is assessed with the batch's
/// criteria set as of the batch's day, and the result must equal the stored one byte for byte
/// before its explanation is shown as the stored one's (`explain --batch`, `report`, the console).
public struct StoredExplanation: Sendable {
    public let stored: StoredResult
    public let record: JSONValue
    /// The result re-derived, when it equals the stored one.
    public let result: AssessmentResult?
    public let text: String
    public var matches: Bool { result != nil }

    public static func make(_ stored: StoredResult, criteria: CriteriaSet, all: Bool = false) -> StoredExplanation {
        guard let record = try? JSONParser.parse(stored.record) else {
            return StoredExplanation(stored: stored, record: .null, result: nil, text: "The stored record of seq \(stored.seq) cannot be read as JSON; `oversight audit verify` names what is wrong.\n")
        }
        let day = stored.asOf.flatMap(CalendarDate.init) ?? CalendarDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        let result = criteria.assess(record, asOf: day, evidence: .all)
        let name = stored.recordID.map { "record \($0)" } ?? "the record"
        if result.canonicalBytes == stored.result {
            var text = Explanation.prose(result, record: record, criteria: criteria, all: all)
            text += "\nStored assessment: seq \(stored.seq) of the batch, row SHA-256 \(stored.rowSHA256.hexString); derived again from \(name) as submitted and the batch's packs as of \(day), it is identical byte for byte.\n"
            return StoredExplanation(stored: stored, record: record, result: result, text: text)
        }
        let storedJSON = try? JSONParser.parse(stored.result)
        let verdict = storedJSON?["verdict"]?.stringValue ?? "?", worst = storedJSON?["worst_case"]?.stringValue
        var text = "Stored assessment of \(name) (seq \(stored.seq)): \(worst.map { $0 == verdict ? verdict : "\(verdict) — could be \($0)" } ?? verdict)\n"
        text += "  It was made by \(stored.engine); this build (\(result.engine)) derives a different result from the same record and packs, so its explanation is not shown as the stored one's. `oversight audit verify` checks that the stored rows are as sealed; `oversight reassess` assesses the batch again with this build.\n"
        return StoredExplanation(stored: stored, record: record, result: nil, text: text)
    }
}
