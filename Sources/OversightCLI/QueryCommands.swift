import Identifiers
import ArgumentParser
import Assessment
import Foundation
import Wire
import AuditStore

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the progress of one batch, or of all batches, from the audit store.",
        discussion: """
            Reads the batch_progress view: an organisation's reader login sees its own batches. A state marked * is sealed (see `oversight audit verify`). For one batch it also shows its records by settled verdict and worst case, counts record ids that occur more than once among its assessed records, and — when its records supersede earlier ones (the same id in an earlier batch of the organisation, or one named in `supersedes`: an agency's answers, resubmitted) — how their verdicts moved and which answers moved them.

            With --counters it asks the running coordinator instead (--coordinator) for its counters: protocol violations by kind, dropped messages, and connections accepted, dropped and refused on each socket.

            Example:
              oversight status --database postgresql://localhost/oversight
              oversight status 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 --json
              oversight status --counters --coordinator tcp://127.0.0.1:5556 --json
            """)

    @Argument(help: "Batch id; all batches when omitted.") var batch: String?
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Flag(help: "Show the running coordinator's counters (violations, dropped messages, connections) instead of batches.") var counters = false
    @OptionGroup var connection: CoordinatorConnectionOptions

    func validate() throws {
        if let batch, BatchID(batch) == nil { throw ValidationError("batch id must be a UUID, got \"\(batch)\"") }
        if counters && batch != nil { throw ValidationError("--counters shows the coordinator's counters; give no batch id with it") }
    }

    func run() throws {
        try runOrExit {
            if counters { return try showCounters() }
            let store = try database.store(applicationName: "oversight-status")
            let id = batch.flatMap(BatchID.init)
            let batches = try store.batchSummaries(batchID: id, limit: nil, oldestFirst: true)
            if let batch, batches.isEmpty { throw CommandFailure("no batch \(batch) in this database") }
            let duplicates = try id.map { try store.duplicateRecordIDs(batchID: $0) }
            if json {
                let objects: [JSONValue] = batches.map { b in
                    .object([("batch_id", .string(b.batchID.description)), ("name", .string(b.name)),
                             ("packs", .array(b.packs.map(JSONValue.string))), ("state", .string(b.state)),
                             ("accepted", .number(Double(b.accepted))), ("rejected", .number(Double(b.rejected))),
                             ("assessed", .number(Double(b.assessed))), ("failing", .number(Double(b.failing))),
                             ("created_at", .string(b.createdAt)), ("organisation", .string(b.organisation)),
                             ("sealed", .bool(b.sealedAt != nil))]
                            + (duplicates.map { [("duplicate_record_ids", JSONValue.number(Double($0)))] } ?? []))
                }
                if let id, case .object(var members) = objects[0] {
                    let verdicts = try store.verdictCounts(batchID: id)
                    members.append(("verdicts", .array(verdicts.map { c in
                        .object([("verdict", .string(c.verdict)), ("worst_case", c.worstCase.map(JSONValue.string) ?? .null), ("records", .number(Double(c.records)))])
                    })))
                    let moves = try store.supersessions(batchID: id)
                    members.append(("superseded", .object([
                        ("records", .number(Double(moves.count))), ("moved", .number(Double(moves.filter(\.moved).count))),
                        ("changes", .array(moves.prefix(1000).map(\.json))),
                    ])))
                    print(JSONValue.object(members).canonicalString)
                    return
                }
                print(JSONValue.array(objects).canonicalString)
                return
            }
            print("BATCH                                 ORGANISATION  STATE      ACCEPTED  ASSESSED  REJECTED  FAILING  NAME")
            for b in batches {
                print(b.batchID.description.padding(toLength: 38, withPad: " ", startingAt: 0)
                      + b.organisation.padding(toLength: 14, withPad: " ", startingAt: 0)
                      + (b.state + (b.sealedAt != nil ? "*" : "")).padding(toLength: 11, withPad: " ", startingAt: 0)
                      + pad(String(b.accepted), 8) + "  " + pad(String(b.assessed), 8) + "  "
                      + pad(String(b.rejected), 8) + "  " + pad(String(b.failing), 7) + "  " + b.name)
            }
            if let duplicates, duplicates > 0 {
                print("\(plural(duplicates, "record id")) occur more than once among the assessed records (submit with --unique-ids to refuse repeats)")
            }
            if let id {
                let verdicts = try store.verdictCounts(batchID: id)
                if !verdicts.isEmpty {
                    print("\nSETTLED VERDICT  WORST CASE       RECORDS")
                    for c in verdicts {
                        print(c.verdict.padding(toLength: 17, withPad: " ", startingAt: 0) + (c.worstCase ?? "-").padding(toLength: 15, withPad: " ", startingAt: 0) + pad(String(c.records), 9))
                    }
                }
                let moves = try store.supersessions(batchID: id)
                if !moves.isEmpty {
                    let moved = moves.filter(\.moved)
                    print("\n\(plural(moves.count, "record")) supersede earlier assessments; \(moved.count) moved:")
                    var transitions: [String: Int] = [:]
                    for move in moved { transitions[move.movement, default: 0] += 1 }
                    for (transition, count) in transitions.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
                        print("  \(pad(String(count), 6))  \(transition)")
                    }
                    for move in moved.prefix(10) {
                        print("  record \(move.recordID) (was in batch \(move.previousBatch)): \(move.movement)\(move.answers.answers.isEmpty ? "" : "; \(move.answers.summary)")")
                    }
                    if moved.count > 10 { print("  … \(plural(moved.count - 10, "more")) (--json lists them)") }
                }
            }
        }
    }

    private func showCounters() throws {
        let client = try connection.client()
        guard case .counters(let list) = try client.request(.counters) else {
            throw CommandFailure("the coordinator did not answer COUNTERS")
        }
        if json {
            print(JSONValue.object(list.map { ($0.name, JSONValue.number(Double($0.value))) }).canonicalString)
        } else {
            let width = list.map(\.name.count).max() ?? 0
            for counter in list { print(counter.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + String(counter.value)) }
        }
    }

    private func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
}

struct ResultsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results",
        abstract: "Export a batch's assessments (JSON Lines or CSV) from the audit store.",
        discussion: """
            JSON Lines: one line per record with its settled verdict, worst case, scores and ranked questions (each in words, with the fields it asks for, the rules it decides and what the verdict becomes each way), and per criteria pack the same, whether it binds, and every finding with its title, legal citation, severity and the facts that made it fire; with the stored result and the audit hashes.

            CSV: one row per record: settled verdict, worst case, determined, scores; a verdict, worst case, score and binds column per pack; the fired and open rules; the first three questions with what each answer could make it, and the fields of the rest. --findings gives one row per finding instead (pack, its verdict and worst case, rule, outcome, title, citation). Every field is quoted as RFC 4180 says.

            A batch still receiving or running exports what is assessed so far, and says so on standard error.

            Example:
              oversight results 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 \\
                  --format csv > results.csv
              oversight results 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 --format csv \\
                  --findings > findings.csv
            """)

    @Argument(help: "Batch id.") var batch: String
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Output format: jsonl or csv.") var format = "jsonl"
    @Flag(help: "CSV: one row per finding instead of one per record.") var findings = false

    func validate() throws {
        guard BatchID(batch) != nil else { throw ValidationError("batch id must be a UUID, got \"\(batch)\"") }
        guard ["jsonl", "csv"].contains(format) else { throw ValidationError("unknown --format \"\(format)\"; use jsonl or csv") }
        if findings && format != "csv" { throw ValidationError("--findings goes with --format csv (JSON Lines carry every finding already)") }
    }

    func run() throws {
        try runOrExit {
            let store = try database.store(applicationName: "oversight-results")
            let id = BatchID(batch)!
            // Through the views, so that an organisation's reader login sees its own batches.
            guard let state = try store.batchSummaries(batchID: id).first else {
                throw CommandFailure("no batch \(batch) in this database (or not visible to this login)")
            }
            switch state.state {
            case "receiving":
                printError("batch \(batch) is still receiving records: \(plural(state.assessed, "record")) of \(state.accepted) accepted so far assessed; exporting those")
            case "running":
                printError("batch \(batch) is running: \(state.assessed) of \(state.accepted) records assessed so far; exporting those")
            case "cancelled":
                printError("batch \(batch) was cancelled: exporting the \(plural(state.assessed, "record")) assessed before it stopped")
            default: break
            }
            let texts = RuleTexts(try store.ruleTexts(batchID: id))
            var export = ResultsExport(batchID: id.description, packs: Self.packIDs(state.packs), rules: texts,
                                       questionTexts: try store.fieldQuestions(),
                                       format: format == "csv" ? (findings ? .findingsCSV : .recordsCSV) : .jsonl)
            StandardOutput.write(export.header)
            // Closed seq ranges: bounded pages whatever the planner's statistics say.
            guard let range = try store.assessedSeqRange(batchID: id) else { return }
            for start in stride(from: range.lowerBound, through: range.upperBound, by: 5000) {
                var text = ""
                for row in try store.exportedResults(batchID: id, seqs: start...min(start + 4999, range.upperBound)) {
                    text += export.render(row)
                }
                StandardOutput.write(text)
            }
        }
    }

    /// The pack ids of a batch's packs ("id@version").
    static func packIDs(_ packs: [String]) -> [String] {
        packs.map { String($0.split(separator: "@").first ?? Substring($0)) }
    }
}

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the audit store schema (oversight.*) in PostgreSQL.",
        discussion: """
            Applies the SQL files of Schemas/sql in order, each once, and records them in oversight.schema_migrations. Safe to run again; the coordinator also runs it at start.

            With --roles-only it creates only the cluster-wide group roles (oversight_coordinator, oversight_worker, oversight_reader) where they are missing: run it on a fresh cluster before `pg_restore` of an Oversight dump, whose policies and grants name them (a dump of one database carries no roles).

            Examples:
              oversight migrate --database postgresql://postgres@localhost/oversight
              oversight migrate --roles-only --database postgresql://postgres@newhost/oversight
              pg_restore --exit-on-error -d postgresql://postgres@newhost/oversight oversight.dump
            """)

    @Flag(help: "Create only the cluster-wide roles an Oversight database needs (before pg_restore into a fresh cluster).")
    var rolesOnly = false
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try runOrExit {
            if rolesOnly {
                let created = try database.store(applicationName: "oversight-migrate").createGroupRoles()
                print(created.isEmpty ? "the roles exist already: \(AuditStore.groupRoles.joined(separator: ", "))"
                                      : "created \(created.joined(separator: ", ")); restore the dump now (pg_restore), then re-create logins with grant-reader and grant-service")
                return
            }
            let report = try database.store(applicationName: "oversight-migrate").migrate()
            if report.applied.isEmpty {
                print("schema is up to date (version \(report.current))")
            } else {
                print("applied \(report.applied.joined(separator: ", ")); schema version \(report.current)")
            }
        }
    }
}
