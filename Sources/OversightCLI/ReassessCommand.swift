import Identifiers
import ArgumentParser
import Assessment
import Foundation
import AuditStore
import Wire

struct ReassessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reassess",
        abstract: "Assess a batch's records again under the current engine, as a new batch linked to the old one.",
        discussion: """
            Reads the records the batch accepted (oversight.submitted_records, in order) and submits them to the coordinator as a new batch whose reassessment_of names the old one; the old batch and its sealed results stay as they were. Each record keeps its seq, so the two can be compared row by row:

              SELECT o.record_id, o.verdict AS before, n.verdict, n.worst_case
              FROM oversight.results o JOIN oversight.results n USING (seq)
              WHERE o.batch_id = 'OLD' AND n.batch_id = 'NEW';

            The packs are the old batch's, by id, in their current built-in version; a pack that is not built in must be given with --pack. Prints the new batch id.

            Example:
              oversight reassess 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 \\
                  --database "$DB" --coordinator tcp://127.0.0.1:5556 --wait
            """)

    @Argument(help: "The batch to assess again (its id).") var batch: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var connection: CoordinatorConnectionOptions
    @OptionGroup var packOptions: PackOptions
    @Option(name: .customLong("as-of"), help: "The day the law is applied as of, YYYY-MM-DD (default: the coordinator's today, UTC).")
    var asOf: String?
    @Flag(help: "Wait until every record is assessed, showing progress.") var wait = false

    func validate() throws {
        guard BatchID(batch) != nil else { throw ValidationError("\(batch) is not a batch id; give the UUID that submit or status printed") }
        if let asOf, CalendarDate(asOf) == nil {
            throw ValidationError("--as-of \(asOf) is not a day; write it as YYYY-MM-DD, for example 2026-08-02")
        }
    }

    func run() throws {
        try runOrExit {
            let store = try database.store(applicationName: "oversight-reassess")
            let old = BatchID(batch)!
            guard let state = try store.batchSummaries(batchID: old).first else {
                throw CommandFailure("no batch \(batch) in this database (or not visible to this login)")
            }
            let name = state.name
            var packs = try packOptions.resolve()
            if packOptions.packs.isEmpty {
                let ids = ResultsCommand.packIDs(state.packs)
                packs = try ids.map { id in
                    guard let pack = CriteriaPack.builtIn(id: id) else {
                        throw CommandFailure("batch \(batch) used the pack \"\(id)\", which is not built in; give it with --pack FILE")
                    }
                    return PackOptions.Resolved(pack: pack, spec: .builtIn(id))
                }
            }
            // The records, as accepted, into a private file the submission reads (and resumes from).
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("oversight-reassess-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("\(batch).jsonl").path
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let out = FileHandle(forWritingAtPath: path) else { throw CommandFailure("cannot write a temporary file in \(directory.path)") }
            var last: Int64 = 0, count = 0
            while true {
                let page = try store.submittedRecords(batchID: old, after: last, limit: 10_000)
                if page.isEmpty { break }
                var text: [UInt8] = []
                for row in page {
                    last = row.seq
                    text += row.record
                    text.append(UInt8(ascii: "\n"))
                }
                out.write(Data(text))
                count += page.count
            }
            try out.close()
            guard count > 0 else { throw CommandFailure("batch \(batch) has no accepted records to assess again") }
            printError("assessing \(plural(count, "record")) of batch \(batch) again")

            let client = try connection.client()
            let id = BatchID()
            var submission = Submission(file: try BatchFile(path: path, format: .jsonl), client: client, batchID: id,
                                        name: "\(name) (reassessed)", packs: packs.map(\.spec))
            submission.options = BatchOptions(asOf: asOf ?? "", reassessmentOf: BatchID(batch))
            submission.onOpened = { id in StandardOutput.write("\(id)\n"); StandardOutput.flush() }
            let outcome = try submission.send(showProgress: wait)
            printError("batch \(id) (reassessment of \(batch)): \(plural(outcome.accepted, "record")) accepted, \(outcome.rejected) rejected")
            guard wait else { return }
            let progress = try submission.wait(showProgress: true)
            printError("batch \(id) \(progress.state == .completed ? "completed" : "cancelled"): \(progress.done) assessed, \(progress.failed) failed")
        }
    }
}
