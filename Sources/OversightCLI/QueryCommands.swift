import ArgumentParser
import Assessment
import Foundation
import LibPQ
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
            let connection = try database.connect(applicationName: "oversight-status")
            let rows: PGResult
            if let batch {
                rows = try connection.query("""
                    SELECT batch_id::text, name, array_to_string(packs, ' '), state, accepted, rejected, assessed, failing,
                           to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), organisation, sealed_at IS NOT NULL,
                           (SELECT count(*) FROM (SELECT 1 FROM oversight.results r WHERE r.batch_id = p.batch_id AND r.record_id IS NOT NULL
                                                  GROUP BY r.record_id HAVING count(*) > 1) d)
                    FROM oversight.batch_progress p WHERE batch_id = \(batch)::uuid
                    """)
                guard rows.rowCount == 1 else { throw CommandFailure("no batch \(batch) in this database") }
            } else {
                rows = try connection.query("""
                    SELECT batch_id::text, name, array_to_string(packs, ' '), state, accepted, rejected, assessed, failing,
                           to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), organisation, sealed_at IS NOT NULL, NULL::bigint
                    FROM oversight.batch_progress ORDER BY created_at
                    """)
            }
            if json {
                let objects: [JSONValue] = (0..<rows.rowCount).map { i in
                    .object([("batch_id", .string(rows.string(i, 0)!)), ("name", .string(rows.string(i, 1)!)),
                             ("packs", .array(rows.string(i, 2)!.split(separator: " ").map { .string(String($0)) })), ("state", .string(rows.string(i, 3)!)),
                             ("accepted", .number(Double(rows.int64(i, 4)!))), ("rejected", .number(Double(rows.int64(i, 5)!))),
                             ("assessed", .number(Double(rows.int64(i, 6)!))), ("failing", .number(Double(rows.int64(i, 7)!))),
                             ("created_at", .string(rows.string(i, 8)!)), ("organisation", .string(rows.string(i, 9)!)),
                             ("sealed", .bool(rows.bool(i, 10)!))]
                            + (rows.int64(i, 11).map { [("duplicate_record_ids", JSONValue.number(Double($0)))] } ?? []))
                }
                if let batch, case .object(var members) = objects[0] {
                    let verdicts = try AuditStore(connection: connection).verdictCounts(batchID: batch)
                    members.append(("verdicts", .array(verdicts.map { c in
                        .object([("verdict", .string(c.verdict)), ("worst_case", c.worstCase.map(JSONValue.string) ?? .null), ("records", .number(Double(c.records)))])
                    })))
                    let moves = try Self.moves(connection, batch: batch)
                    members.append(("superseded", .object([
                        ("records", .number(Double(moves.count))), ("moved", .number(Double(moves.filter(\.moved).count))),
                        ("changes", .array(moves.prefix(1000).map(\.json))),
                    ])))
                    print(JSONValue.object(members).canonicalString)
                    return
                }
                print(batch == nil ? JSONValue.array(objects).canonicalString : objects[0].canonicalString)
                return
            }
            print("BATCH                                 ORGANISATION  STATE      ACCEPTED  ASSESSED  REJECTED  FAILING  NAME")
            for i in 0..<rows.rowCount {
                print(rows.string(i, 0)!.padding(toLength: 38, withPad: " ", startingAt: 0)
                      + rows.string(i, 9)!.padding(toLength: 14, withPad: " ", startingAt: 0)
                      + (rows.string(i, 3)! + (rows.bool(i, 10)! ? "*" : "")).padding(toLength: 11, withPad: " ", startingAt: 0)
                      + pad(rows.string(i, 4)!, 8) + "  " + pad(rows.string(i, 6)!, 8) + "  "
                      + pad(rows.string(i, 5)!, 8) + "  " + pad(rows.string(i, 7)!, 7) + "  " + rows.string(i, 1)!)
            }
            if let duplicates = rows.rowCount == 1 ? rows.int64(0, 11) : nil, duplicates > 0 {
                print("\(plural(duplicates, "record id")) occur more than once among the assessed records (submit with --unique-ids to refuse repeats)")
            }
            if let batch {
                let verdicts = try AuditStore(connection: connection).verdictCounts(batchID: batch)
                if !verdicts.isEmpty {
                    print("\nSETTLED VERDICT  WORST CASE       RECORDS")
                    for c in verdicts {
                        print(c.verdict.padding(toLength: 17, withPad: " ", startingAt: 0) + (c.worstCase ?? "-").padding(toLength: 15, withPad: " ", startingAt: 0) + pad(String(c.records), 9))
                    }
                }
                let moves = try Self.moves(connection, batch: batch)
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

    /// A record of the batch that supersedes one of an earlier batch, and how its verdict moved.
    struct Move {
        let recordID: String
        let previousBatch: String
        let before: (settled: Verdict, worst: Verdict)
        let after: (settled: Verdict, worst: Verdict)
        let answers: AnswersBack
        var moved: Bool { before != after }
        var movement: String { Verdict.movement(from: before, to: after) }
        var json: JSONValue {
            .object([
                ("record_id", .string(recordID)), ("previous_batch", .string(previousBatch)),
                ("before", .object([("verdict", .string(before.settled.rawValue)), ("worst_case", .string(before.worst.rawValue))])),
                ("after", .object([("verdict", .string(after.settled.rawValue)), ("worst_case", .string(after.worst.rawValue))])),
                ("moved", .bool(moved)),
                ("answers", .array(answers.answers.map { answer in
                    .object([("field", .string(answer.field)), ("before", answer.before ?? .null), ("after", answer.after), ("asked", .bool(answer.asked))])
                })),
            ])
        }
    }

    /// The batch's records that supersede the latest assessment of the same record in an earlier
    /// batch of the organisation (by id, or the id a record names in `supersedes`). One pass over
    /// each side (a hash join), no lookup per record.
    static func moves(_ connection: PGConnection, batch: String) throws -> [Move] {
        let rows = try connection.query("""
            WITH this AS (SELECT organisation, created_at FROM oversight.visible_batches WHERE batch_id = \(batch)::uuid),
            later AS (
                SELECT r.seq, r.record_id, r.verdict, r.worst_case, s.record,
                       COALESCE(s.record::jsonb->>'supersedes', r.record_id) AS key
                FROM oversight.results r JOIN oversight.submitted_records s USING (batch_id, seq)
                WHERE r.batch_id = \(batch)::uuid AND COALESCE(s.record::jsonb->>'supersedes', r.record_id) IS NOT NULL),
            earlier AS (
                SELECT DISTINCT ON (r.record_id) r.record_id, r.batch_id, r.verdict, r.worst_case, r.result, s.record
                FROM oversight.results r
                JOIN oversight.visible_batches b ON b.batch_id = r.batch_id
                JOIN oversight.submitted_records s ON s.batch_id = r.batch_id AND s.seq = r.seq, this
                WHERE b.organisation = this.organisation AND b.created_at < this.created_at AND r.record_id IN (SELECT key FROM later)
                ORDER BY r.record_id, b.created_at DESC, r.seq DESC)
            SELECT l.record_id, e.batch_id::text, e.verdict, e.worst_case, e.result::text, e.record, l.verdict, l.worst_case, l.record
            FROM later l JOIN earlier e ON e.record_id = l.key ORDER BY l.seq
            """)
        return (0..<rows.rowCount).compactMap { i in
            guard let before = rows.string(i, 2).flatMap(Verdict.init(rawValue:)),
                  let after = rows.string(i, 6).flatMap(Verdict.init(rawValue:)),
                  let earlier = try? JSONParser.parse(rows.string(i, 5) ?? ""), let later = try? JSONParser.parse(rows.string(i, 8) ?? "")
            else { return nil }
            // An engine-3 row has no worst case: its verdict stands for both.
            let beforeWorst = rows.string(i, 3).flatMap(Verdict.init(rawValue:)) ?? before
            let asked: Set<String>
            if case .array(let questions)? = (try? JSONParser.parse(rows.string(i, 4) ?? "{}"))?["questions"] {
                asked = Set(questions.compactMap { q -> [String]? in
                    guard case .array(let fields)? = q["fields"] else { return nil }
                    return fields.compactMap(\.stringValue)
                }.flatMap { $0 })
            } else {
                asked = []
            }
            return Move(recordID: rows.string(i, 0) ?? "", previousBatch: rows.string(i, 1) ?? "", before: (before, beforeWorst),
                        after: (after, rows.string(i, 7).flatMap(Verdict.init(rawValue:)) ?? after),
                        answers: AnswersBack.between(earlier, later, asked: asked))
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
            let connection = try database.connect(applicationName: "oversight-results")
            // Through the views, so that an organisation's reader login sees its own batches.
            let state = try connection.query("""
                SELECT state, accepted, assessed, array_to_string(packs, ' ') FROM oversight.batch_progress WHERE batch_id = \(batch)::uuid
                """)
            guard state.rowCount == 1 else { throw CommandFailure("no batch \(batch) in this database (or not visible to this login)") }
            let assessed = state.int64(0, 2) ?? 0
            switch state.string(0, 0) ?? "" {
            case "receiving":
                printError("batch \(batch) is still receiving records: \(plural(assessed, "record")) of \(state.int64(0, 1) ?? 0) accepted so far assessed; exporting those")
            case "running":
                printError("batch \(batch) is running: \(assessed) of \(state.int64(0, 1) ?? 0) records assessed so far; exporting those")
            case "cancelled":
                printError("batch \(batch) was cancelled: exporting the \(plural(assessed, "record")) assessed before it stopped")
            default: break
            }
            let texts = try RuleTexts(connection, batch: batch)
            let packs = Self.packIDs(state.string(0, 3) ?? "")
            let questionRows = try connection.query("SELECT path, question FROM oversight.field_questions")
            let questionTexts = Dictionary((0..<questionRows.rowCount).map { (questionRows.string($0, 0)!, questionRows.string($0, 1)!) },
                                           uniquingKeysWith: { a, _ in a })
            var export = ResultsExport(batchID: batch.lowercased(), packs: packs, rules: texts, questionTexts: questionTexts, format: format == "csv" ? (findings ? .findingsCSV : .recordsCSV) : .jsonl)
            StandardOutput.write(export.header)
            // Closed seq ranges: bounded pages whatever the planner's statistics say.
            let bounds = try connection.query("SELECT min(seq), max(seq) FROM oversight.results WHERE batch_id = \(batch)::uuid")
            let low = bounds.int64(0, 0) ?? 1, high = bounds.int64(0, 1) ?? 0
            for start in stride(from: low - 1, to: high, by: 5000) {
                let rows = try connection.query("""
                    SELECT seq, record_id, verdict, score, applies, result, encode(input_sha256, 'hex'),
                           encode(row_sha256, 'hex'), worker, to_char(assessed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           worst_case, determined
                    FROM oversight.results WHERE batch_id = \(batch)::uuid AND seq > \(start) AND seq <= \(min(start + 5000, high))
                    ORDER BY seq
                    """)
                var text = ""
                for i in 0..<rows.rowCount {
                    text += export.render(ResultsExport.Row(
                        seq: rows.int64(i, 0)!, recordID: rows.string(i, 1), verdict: rows.string(i, 2)!,
                        worstCase: rows.string(i, 10), determined: rows.bool(i, 11), score: rows.int(i, 3)!,
                        applies: rows.string(i, 4)!, result: (try? JSONParser.parse(rows.string(i, 5)!)) ?? .null,
                        inputSHA256: rows.string(i, 6)!, rowSHA256: rows.string(i, 7)!, worker: rows.string(i, 8)!, assessedAt: rows.string(i, 9)!))
                }
                StandardOutput.write(text)
            }
        }
    }

    /// The pack ids of `batch_progress.packs` ("id@version id@version").
    static func packIDs(_ packs: String) -> [String] {
        packs.split(separator: " ").map { String($0.split(separator: "@").first ?? $0) }
    }
}

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the audit store schema (oversight.*) in PostgreSQL.",
        discussion: """
            Applies the SQL files of Schemas/sql in order, each once, and records them in oversight.schema_migrations. Safe to run again; the coordinator also runs it at start.

            Example:
              oversight migrate --database postgresql://postgres@localhost/oversight
            """)

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try runOrExit {
            let connection = try database.connect(applicationName: "oversight-migrate")
            let report = try Migrator.migrate(connection)
            if report.applied.isEmpty {
                print("schema is up to date (version \(report.current))")
            } else {
                print("applied \(report.applied.joined(separator: ", ")); schema version \(report.current)")
            }
        }
    }
}
