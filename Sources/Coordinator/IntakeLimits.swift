public import Assessment
import Wire

/// Bounds on what clients may submit. Records over a limit are rejected (by line, with the
/// field and the limit); a chunk that would take a batch over its limit is refused whole.
public struct IntakeLimits: Sendable, Equatable {
    public var record = RecordLimits()
    /// Accepted records in one batch.
    public var maximumBatchRecords: Int64 = 10_000_000

    public init() {}

    /// Why the chunk must be refused, or nil.
    func refusal(chunk: [SubmittedRecord], acceptedSoFar: Int64) -> String? {
        guard acceptedSoFar + Int64(chunk.count) > maximumBatchRecords else { return nil }
        return "the batch would exceed \(maximumBatchRecords) records (the coordinator's --max-batch-records); split the input into several batches"
    }
}
