import ArgumentParser
import Assessment
import Foundation
import Wire

struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a batch of deployment records (JSON Lines or CSV) for assessment.",
        discussion: """
            Prints the batch id on standard output. Records that violate the deployment schema are
            reported by line and field and kept in oversight.rejected_records; the rest are assessed.
            Submitting again with the same --batch-id resumes after the last stored chunk.

            CSV: either the EFF Atlas of Surveillance export, or columns named by field path
            (system.type, operator.country, safeguards.human_review, …; lists separated by ';').

            Example:
              oversight submit deployments.jsonl --coordinator tcp://127.0.0.1:5556 --wait
              oversight submit atlas.csv --pack eu-ai-act-2024 --pack my-criteria.json
            """)

    @Argument(help: "The batch file: .jsonl (one JSON record per line) or .csv.") var file: String
    @OptionGroup var connection: CoordinatorConnectionOptions
    @Option(help: "File format, when the file name does not tell: jsonl or csv.") var format: String?
    @OptionGroup var packOptions: PackOptions
    @Option(help: "A name for the batch (default: the file name).") var name: String?
    @Option(help: "Batch id (a UUID) to create or resume; default: a new one.") var batchID: String?
    @Flag(help: "Wait until every record is assessed, showing progress.") var wait = false

    func validate() throws {
        if let format, BatchFile.Format(rawValue: format) == nil {
            throw ValidationError("unknown --format \"\(format)\"; use jsonl or csv")
        }
        if let batchID, BatchID(batchID) == nil {
            throw ValidationError("--batch-id must be a UUID such as 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70")
        }
    }

    func run() throws {
        try runOrExit {
            let packs = try packOptions.resolve()
            let batchFile = try BatchFile(path: file, format: format.flatMap(BatchFile.Format.init(rawValue:)))
            let client = try connection.client()
            let id = batchID.flatMap(BatchID.init) ?? BatchID()
            var submission = Submission(file: batchFile, client: client, batchID: id,
                                        name: name ?? (file as NSString).lastPathComponent, packs: packs.map(\.spec))
            // The id is printed once the batch exists, never for one that was refused or never made.
            submission.onOpened = { id in FileHandle.standardOutput.write(Data("\(id)\n".utf8)) }
            let started = Date()
            let outcome = try submission.send(showProgress: wait)
            printError("batch \(id): \(outcome.accepted) records accepted, \(outcome.rejected) rejected")
            guard wait else { return }
            let progress = try submission.wait(showProgress: true)
            let seconds = Date().timeIntervalSince(started)
            let rate = seconds > 0 ? Double(progress.done) / seconds : 0
            printError(String(format: "batch %@ %@: %lld assessed, %lld failed, %lld rejected in %.1f s (%.0f assessments/s)",
                              id.description, progress.state == .completed ? "completed" : "cancelled",
                              progress.done, progress.failed, progress.rejected, seconds, rate))
        }
    }
}
