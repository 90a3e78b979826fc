import Identifiers
import ArgumentParser
import Assessment
import Foundation
import Wire

struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a batch of deployment records (JSON Lines or CSV) for assessment.",
        discussion: """
            Prints the batch id on standard output once the batch exists. Records that violate the deployment schema are reported by line and field and kept in oversight.rejected_records; the rest are assessed. A file with no records, or one that is not text, is refused before any batch is made.

            Formats: .jsonl (one record per line), .json (one record, or an array of records, pretty-printed or not), .csv.

            Submitting again with the same --batch-id resumes after the last stored line, once the file is proven to be the one the batch started with.

            Exit status: 0 submitted (rejected records are reported, not failures, unless --strict: then 3); 1 refused or failed.

            CSV: either the EFF Atlas of Surveillance export, or columns named by field path (system.type, operator.country, safeguards.human_review, …; lists separated by ';').

            Example:
              oversight submit deployments.jsonl --coordinator tcp://127.0.0.1:5556 --wait
              oversight submit atlas.csv --pack eu-ai-act-2024 --pack my-criteria.json
              oversight submit atlas.csv --as-of 2026-08-01
              oversight submit atlas.csv --evidence-pack our-wordings.evidence.json
            """)

    @Argument(help: "The batch file: .jsonl (one JSON record per line), .json (one record or an array) or .csv.") var file: String
    @OptionGroup var connection: CoordinatorConnectionOptions
    @Option(help: "File format, when the file name does not tell: jsonl, json (one record or an array) or csv.") var format: String?
    @OptionGroup var packOptions: PackOptions
    @Option(help: "A name for the batch (default: the file name).") var name: String?
    @Option(help: "Batch id (a UUID) to create or resume; default: a new one.") var batchID: String?
    @Option(name: .customLong("as-of"), help: "The day the law is applied as of, YYYY-MM-DD (default: the coordinator's today, UTC); fixed for the batch.")
    var asOf: String?
    @Option(help: "For an Atlas of Surveillance export: which facts to read from its text into each record (all, stated, off); see `oversight import atlas --help`.")
    var evidence = "all"
    @Option(name: .customLong("evidence-pack"), help: ArgumentHelp(
        "An evidence pack of your own (JSON, kind \"evidence\"): it reads an Atlas export's text instead of the built-in one, and is stored with the batch. Give it too when the records' inferred facts were read with it (by `oversight import atlas --evidence-pack`): the coordinator accepts a fact only if the pack it names, run on the record, finds it.",
        valueName: "file"))
    var evidencePack: String?
    @Flag(help: "Wait until every record is assessed, showing progress.") var wait = false
    @Flag(name: .customLong("unique-ids"), help: "Reject a record whose id an earlier record of the file already used (without it, repeats are reported and accepted).")
    var uniqueIDs = false
    @Flag(help: "Exit with status 3 when any record was rejected (for scripts); everything else is submitted as usual.")
    var strict = false

    func validate() throws {
        if let format, BatchFile.Format(rawValue: format) == nil {
            throw ValidationError("unknown --format \"\(format)\"; use jsonl, json or csv")
        }
        if let asOf, CalendarDate(asOf) == nil {
            throw ValidationError("--as-of \(asOf) is not a day; write it as YYYY-MM-DD, for example 2026-08-02")
        }
        guard EvidenceUse(rawValue: evidence) != nil else { throw ValidationError("unknown --evidence \"\(evidence)\"; use all, stated or off") }
        if let batchID, BatchID(batchID) == nil {
            throw ValidationError("--batch-id must be a UUID such as 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70")
        }
    }

    func run() throws {
        try runOrExit {
            let packs = try packOptions.resolve()
            let reader = try evidencePack.map(EvidencePack.load)
            let batchFile = try BatchFile(path: file, format: format.flatMap(BatchFile.Format.init(rawValue:)),
                                          evidence: EvidenceUse(rawValue: evidence) ?? .all, evidencePack: reader ?? .builtIn)
            let client = try connection.client()
            let id = batchID.flatMap(BatchID.init) ?? BatchID()
            var submission = Submission(file: batchFile, client: client, batchID: id,
                                        name: name ?? (file as NSString).lastPathComponent,
                                        packs: packs.map(\.spec) + (reader.map { [.evidence($0.canonicalText)] } ?? []))
            // The id is printed once the batch exists, never for one that was refused or never made.
            submission.onOpened = { id in StandardOutput.write("\(id)\n"); StandardOutput.flush() }
            submission.uniqueIDs = uniqueIDs
            submission.options.asOf = asOf ?? ""
            let started = Date()
            let outcome = try submission.send(showProgress: wait)
            printError("batch \(id): \(plural(outcome.accepted, "record")) accepted, \(outcome.rejected) rejected")
            if submission.duplicates.reported > 0 && !uniqueIDs {
                printError("\(plural(submission.duplicates.reported, "record")) reused an earlier record's id (see above); --unique-ids rejects them")
            }
            defer {
                if strict && outcome.rejected > 0 {
                    printError("--strict: \(plural(outcome.rejected, "record was", "records were")) rejected")
                    Foundation.exit(3)
                }
            }
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
