public import Assessment
public import AuditStore
public import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Scores the jobs of one bundle: pure, no I/O. A job that cannot be scored is a failure with
/// a reason, not an exception.
public struct BundleScorer {
    /// Fault injection for the fault tests: the process dies (SIGKILL) when it scores a record
    /// with this id, as a poison record that crashes its worker would make it.
    let crashOnRecordID: String?

    public init(crashOnRecordID: String? = nil) { self.crashOnRecordID = crashOnRecordID }

    public func score(_ bundle: JobBundle, with criteria: CriteriaSet) -> (rows: [AssessmentRow], failures: [(seq: Int64, attempt: Int, reason: String)]) {
        var rows: [AssessmentRow] = []
        var failures: [(seq: Int64, attempt: Int, reason: String)] = []
        rows.reserveCapacity(bundle.jobs.count)
        let batchID = bundle.batchID.description
        for job in bundle.jobs {
            switch RecordCheck.check(job.record) {
            case .invalid(let violation):
                failures.append((job.seq, Int(job.attempt) + 1, "record does not validate: \(violation)"))
            case .valid(let record):
                if let crashOnRecordID, record["id"]?.stringValue == crashOnRecordID { kill(getpid(), SIGKILL) }
                let result = criteria.assess(record)
                rows.append(AssessmentRow(batchID: batchID, seq: job.seq, recordID: record["id"]?.stringValue, result: result,
                                          criteriaSHA256: criteria.sha256, inputSHA256: AuditHash.input(record), attempt: Int(job.attempt) + 1))
            }
        }
        return (rows, failures)
    }
}
