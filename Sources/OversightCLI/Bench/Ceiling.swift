import Assessment
import Foundation
import AuditStore
import Identifiers
import ZeroMQ

/// The most this machine's PostgreSQL can take of the system's writes, with no ZeroMQ and no
/// scoring: the same records COPY'd into a copy of `jobs` in chunks of the intake's size over
/// one connection (as the coordinator writes them), then as many result rows COPY'd into a copy
/// of `assessments` in bundles of the dispatch size over one connection per worker (as the
/// workers write them), each chunk or bundle its own transaction. The copies live in a scratch
/// schema (same columns, keys and indexes) that is dropped afterwards.
struct Ceiling {
    let conninfo: String
    let records: Int
    let seed: UInt64
    let connections: Int
    var chunkSize = 1_000
    var bundleSize = 256

    /// Seconds for the jobs and for the assessments.
    func run() throws -> (jobs: Double, assessments: Double) {
        let admin = try AuditStore(conninfo: conninfo, applicationName: "oversight-bench")
        try admin.createCeilingTables()
        defer { admin.dropCeilingTables() }
        let batch = BatchID()

        // Jobs: the records as the coordinator stores them.
        var texts: [[UInt8]] = []
        texts.reserveCapacity(chunkSize)
        var jobsSeconds = 0.0
        var seq: Int64 = 0
        func flushJobs() throws {
            guard !texts.isEmpty else { return }
            let start = ContinuousClock.now
            try admin.copyCeilingJobs(batchID: batch, firstSeq: seq + 1, records: texts)
            seq += Int64(texts.count)
            jobsSeconds += (ContinuousClock.now - start).seconds
            texts.removeAll(keepingCapacity: true)
        }
        for record in SyntheticDeployments(count: records, seed: seed) {
            texts.append(record.canonicalBytes)
            if texts.count == chunkSize { try flushJobs() }
        }
        try flushJobs()

        // Results: real result rows of the same records (a pool, reused), written in bundles.
        let criteria = CriteriaSet.builtIn
        let pool = Array(SyntheticDeployments(count: min(records, 1_000), seed: seed)).enumerated().map { i, record in
            AssessmentRow(batchID: batch, seq: Int64(i + 1), record: record, result: criteria.assess(record, asOf: .today),
                          criteriaSHA256: criteria.sha256, inputSHA256: AuditHash.input(record), attempt: 1)
        }
        let start = ContinuousClock.now
        let failures = Mailbox<String>()
        let group = DispatchGroup()
        for c in 0..<connections {
            group.enter()
            let thread = Thread { [conninfo, records, bundleSize, connections] in
                defer { group.leave() }
                do {
                    let store = try AuditStore(conninfo: conninfo, applicationName: "oversight-bench-\(c)")
                    // Interleaved bundles, as a dispatcher deals them out.
                    var first = c * bundleSize
                    while first < records {
                        let last = min(first + bundleSize, records)
                        try store.copyCeilingAssessments(batchID: batch, seqs: first..<last, pool: pool,
                                                         criteriaSHA256: criteria.sha256, worker: "ceiling")
                        first += connections * bundleSize
                    }
                } catch {
                    failures.post("\(error)")
                }
            }
            thread.start()
        }
        group.wait()
        if let failure = failures.drain().first { throw CommandFailure("ceiling measurement failed: \(failure)") }
        return (jobsSeconds, (ContinuousClock.now - start).seconds)
    }
}
