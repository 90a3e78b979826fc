public import Assessment
public import AuditStore
public import Wire
#if canImport(Glibc)
import Identifiers
import Glibc
#endif

/// Scores the jobs of one bundle: pure, no I/O. A job that cannot be scored is a failure with
/// a reason, not an exception.
public struct BundleScorer {
    /// Fault injection for the fault tests: the process dies (SIGKILL) when it scores a record
    /// with this id, as a poison record that crashes its worker would make it.
    let crashOnRecordID: String?

    public init(crashOnRecordID: String? = nil) { self.crashOnRecordID = crashOnRecordID }

    public func score(_ bundle: JobBundle, with criteria: CriteriaSet, asOf: CalendarDate) -> (rows: [AssessmentRow], failures: [(seq: Int64, attempt: Int, reason: String)]) {
        var rows: [AssessmentRow] = []
        var failures: [(seq: Int64, attempt: Int, reason: String)] = []
        rows.reserveCapacity(bundle.jobs.count)
        let batchID = bundle.batchID
        for job in bundle.jobs {
            // The coordinator validated every record against the schema at intake; here it is
            // only parsed (a record that does not parse is a failure, not a crash).
            let parsed: JSONValue
            var shape = JSONParser.Shape()
            do { parsed = try JSONParser.parse(job.record, shape: &shape) } catch {
                failures.append((job.seq, Int(job.attempt) + 1, "record does not parse: \(error)"))
                continue
            }
            switch parsed {
            case .object:
                let record = parsed
                if let crashOnRecordID, record["id"]?.stringValue == crashOnRecordID { kill(getpid(), SIGKILL) }
                let result = criteria.assess(record, asOf: asOf)
                rows.append(AssessmentRow(batchID: batchID, seq: job.seq, record: record, result: result,
                                          criteriaSHA256: criteria.sha256,
                                          // A record stored in canonical form (as `submit` sends generated and
                                          // converted records) is hashed as it is, not written out again.
                                          inputSHA256: shape.isCanonical ? AuditHash.sha256(job.record) : AuditHash.input(record),
                                          attempt: Int(job.attempt) + 1))
            default:
                failures.append((job.seq, Int(job.attempt) + 1, "record is not a JSON object"))
            }
        }
        return (rows, failures)
    }
}
