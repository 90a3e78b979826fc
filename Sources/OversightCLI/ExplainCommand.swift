import Identifiers
import ArgumentParser
import Assessment
import Foundation
import Reporting
import Console
import AuditStore
import Wire

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Assess one deployment record and explain what is settled, what could be worse, and what to ask.",
        discussion: """
            Leads with the settled verdict (what the known facts establish) and the findings it rests on, then what the record could still be if the open facts turned out worst, with the three questions most likely to decide it, each written for whoever can answer it (an agency, a vendor). --all adds every question, every pack's open rules and the rules that do not apply. With --json, prints the assessment exactly as it is stored in oversight.assessments.

            Example:
              oversight explain deployment.json
              oversight explain deployment.json --as-of 2026-01-15 --all
              oversight explain deployment.json --evidence off
              oversight explain answered.json --previous deployment.json
              oversight explain deployment.json --pack eu-ai-act-2024 --json

            With --batch it explains an assessment stored in PostgreSQL instead, by record id (--record) or by its place in the batch (--seq): the record as submitted is assessed again with the batch's packs as of the batch's day and must equal the stored result byte for byte, so the text is the stored assessment's. A record id that occurs more than once in the batch asks for --seq.

              oversight explain --batch 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 \\
                  --record AOS005208 --database postgresql://localhost/oversight
            """)

    @Argument(help: "A file holding one deployment record (JSON); not with --batch.") var record: String?
    @Option(help: "Explain a stored assessment of this batch (with --record or --seq) instead of a file.") var batch: String?
    @Option(name: .customLong("record"), help: "With --batch: the record's id.") var recordID: String?
    @Option(help: "With --batch: the record's place in the batch (1 for its first accepted record).") var seq: Int64?
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var packOptions: PackOptions
    @Option(name: .customLong("as-of"), help: "The day the law is applied as of, YYYY-MM-DD (default: today, UTC); rules not yet in force then do not count.")
    var asOf: String?
    @Option(help: "Which facts read from the record's text count: all (stated and implied), stated, or off (declared facts only).")
    var evidence = "all"
    @Option(help: "An earlier version of the record (before an agency answered, say): show how the verdict moved and which answers moved it.")
    var previous: String?
    @Flag(help: "Print the canonical assessment JSON instead of prose.") var json = false
    @Flag(help: "Also list every question, the open rules of each pack, and the rules that do not apply.") var all = false

    func validate() throws {
        if let batch {
            guard BatchID(batch) != nil else { throw ValidationError("batch id must be a UUID, got \"\(batch)\"") }
            guard record == nil else { throw ValidationError("give a record file or --batch, not both") }
            guard (recordID == nil) != (seq == nil) else { throw ValidationError("with --batch, give --record ID or --seq N (one of them)") }
            guard asOf == nil, previous == nil, packOptions.packs.isEmpty, evidence == "all" else {
                throw ValidationError("a stored assessment keeps its batch's packs, day and evidence; --pack, --as-of, --evidence and --previous are for a record file")
            }
        } else {
            guard record != nil else { throw ValidationError("give a record file, or --batch BATCH with --record ID or --seq N") }
            guard recordID == nil, seq == nil else { throw ValidationError("--record and --seq go with --batch") }
        }
        if let asOf, CalendarDate(asOf) == nil {
            throw ValidationError("--as-of \(asOf) is not a day; write it as YYYY-MM-DD, for example 2026-08-02")
        }
        guard EvidenceUse(rawValue: evidence) != nil else { throw ValidationError("unknown --evidence \"\(evidence)\"; use all, stated or off") }
    }

    /// A record file, checked against the schema.
    static func read(_ path: String) throws -> JSONValue {
        guard FileManager.default.fileExists(atPath: path) else { throw CommandFailure("file not found: \(path)") }
        switch RecordCheck.check(Array(try Data(contentsOf: URL(fileURLWithPath: path)))) {
        case .invalid(let violation): throw CommandFailure("\(path): \(violation) (see Schemas/deployment.schema.json)")
        case .valid(let value): return value
        }
    }

    func run() throws {
        try runOrExit {
            if let batch { return try explainStored(BatchID(batch)!) }
            let record = record!
            let value = try Self.read(record)
            let criteria = try packOptions.criteriaSet
            let day = asOf.flatMap(CalendarDate.init) ?? .today
            let use = EvidenceUse(rawValue: evidence) ?? .all
            let result = criteria.assess(value, asOf: day, evidence: use)
            if json { print(result.canonicalJSON.canonicalString); return }
            var text = Explanation.prose(result, record: value, criteria: criteria, all: all)
            if let previous {
                let earlier = try Self.read(previous)
                // The same packs, day and evidence: what moved is what the record says.
                let before = criteria.assess(earlier, asOf: day, evidence: use)
                let answers = AnswersBack.between(earlier, value, asked: Set(before.questions.map(\.path)))
                let movement = "Since \(previous): \(Verdict.movement(from: (before.verdict, before.worstCase), to: (result.verdict, result.worstCase)))"
                let changed = answers.answers.isEmpty ? "  No fact changed." : "  What changed: \(answers.summary)"
                // After the verdict and score lines.
                var lines = text.components(separatedBy: "\n")
                lines.insert(contentsOf: ["", movement, changed], at: min(2, lines.count))
                text = lines.joined(separator: "\n")
            }
            print(text, terminator: "")
        }
    }

    func explainStored(_ batch: BatchID) throws {
        let store = try database.store(applicationName: "oversight-explain", reading: true)
        guard let criteria = try store.criteriaSet(batchID: batch) else { throw CommandFailure("no batch \(batch) in this database (or not visible to this login)") }
        var place = seq
        if let recordID {
            let seqs = try store.seqs(batchID: batch, recordID: recordID)
            guard !seqs.isEmpty else { throw CommandFailure("batch \(batch) has no assessed record with id \(recordID)") }
            guard seqs.count == 1 else {
                throw CommandFailure("record id \(recordID) occurs \(seqs.count) times in batch \(batch) (seqs \(seqs.map(String.init).joined(separator: ", "))); give --seq N")
            }
            place = seqs[0]
        }
        guard let stored = try store.storedResult(batchID: batch, seq: place!) else { throw CommandFailure("batch \(batch) has no assessment at seq \(place!)") }
        if json { print(String(decoding: stored.result, as: UTF8.self)); return }
        print(StoredExplanation.make(stored, criteria: criteria, all: all).text, terminator: "")
    }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn other formats into deployment records (JSON Lines).",
        discussion: """
            Example:
              oversight import atlas atlas-of-surveillance.csv > records.jsonl
            """,
        subcommands: [Atlas.self])

    struct Atlas: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert an EFF Atlas of Surveillance CSV export into deployment records.",
            discussion: """
                Maps what a row says — technology (system type and the data it necessarily processes), agency and agency type (a law-enforcement operator in the United States), jurisdiction, vendor, summary, sources — and leaves everything else absent, that is unknown. Rows that cannot be read are reported with their line.

                Then reads the summary and the vendor with the built-in evidence pack (Schemas/atlas.evidence.json: phrases agencies and journalists use, and a register of what public sources document about vendors): each fact found goes into the record's "inferred" list with the exact span it rests on, the pattern, whether the text states or implies it, and the pack's version and SHA-256. Declared fields always win over inferred ones. --evidence stated keeps only what the text states; off infers nothing.

                The coordinator checks every inferred fact at intake: the pack it names, run on the record's own text, must find it. Records read with a pack of your own are submitted with the same --evidence-pack, which stores it with the batch.

                Example:
                  oversight import atlas Samples/atlas-of-surveillance-sample.csv \\
                      > atlas.jsonl
                  oversight import atlas export.csv --evidence stated > atlas.jsonl
                  oversight import atlas export.csv --evidence-pack ours.json > ours.jsonl
                  oversight submit ours.jsonl --evidence-pack ours.json
                """)

        @Argument(help: "The Atlas of Surveillance CSV file.") var file: String
        @Option(help: "Which facts to read from the text: all (stated and implied), stated, or off.") var evidence = "all"
        @Option(name: .customLong("evidence-pack"), help: "Read the text with this evidence pack (JSON, kind \"evidence\") instead of the built-in one; every fact names its SHA-256.")
        var evidencePack: String?

        func validate() throws {
            guard EvidenceUse(rawValue: evidence) != nil else { throw ValidationError("unknown --evidence \"\(evidence)\"; use all, stated or off") }
        }

        func run() throws {
            try runOrExit {
                let pack = try evidencePack.map(EvidencePack.load) ?? .builtIn
                var input = try BatchFile(path: file, format: .csv, evidence: EvidenceUse(rawValue: evidence) ?? .all, evidencePack: pack)
                var written = 0, failed = 0
                while true {
                    let records = try input.next(1_000)
                    if records.isEmpty { break }
                    guard input.csvLayout == .atlas else {
                        throw CommandFailure("\(file): line 1: not an Atlas of Surveillance export (no AOSNUMBER and Technology columns); submit field-path CSV files directly")
                    }
                    var out = ""
                    for record in records {
                        switch record.body {
                        case .json(let bytes):
                            out += String(decoding: bytes, as: UTF8.self) + "\n"
                            written += 1
                        case .oversized(_, let bytes, _):
                            failed += 1
                            printError("\(file):\(record.line): a line of \(bytes) bytes is larger than a record can be")
                        case .malformed(_, let field, let message):
                            failed += 1
                            printError("\(file):\(record.line):\(field.isEmpty ? "" : " field \"\(field)\":") \(message)")
                        }
                    }
                    StandardOutput.write(out)
                }
                printError("\(plural(written, "record")) written\(failed > 0 ? ", \(plural(failed, "row")) could not be read" : "")")
                if evidence != "off" { printError("facts read from the text with \(pack.pin)") }
                if failed > 0 { throw ExitCode.failure }
            }
        }
    
    }
}
