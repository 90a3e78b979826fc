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
            Reads the batch_progress view: an organisation's reader login sees its own batches.
            A state marked * is sealed (see `oversight audit verify`).

            Example:
              oversight status --database postgresql://localhost/oversight
              oversight status 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 --json
            """)

    @Argument(help: "Batch id; all batches when omitted.") var batch: String?
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print JSON instead of a table.") var json = false

    func validate() throws {
        if let batch, BatchID(batch) == nil { throw ValidationError("batch id must be a UUID, got \"\(batch)\"") }
    }

    func run() throws {
        try runOrExit {
            let connection = try database.connect(applicationName: "oversight-status")
            let rows: PGResult
            if let batch {
                rows = try connection.query("""
                    SELECT batch_id::text, name, array_to_string(packs, ' '), state, accepted, rejected, assessed, failing, created_at::text,
                           organisation, sealed_at IS NOT NULL
                    FROM oversight.batch_progress WHERE batch_id = \(batch)::uuid
                    """)
                guard rows.rowCount == 1 else { throw CommandFailure("no batch \(batch) in this database") }
            } else {
                rows = try connection.query("""
                    SELECT batch_id::text, name, array_to_string(packs, ' '), state, accepted, rejected, assessed, failing, created_at::text,
                           organisation, sealed_at IS NOT NULL
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
                             ("sealed", .bool(rows.bool(i, 10)!))])
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
        }
    }

    private func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
}

struct ResultsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results",
        abstract: "Export a batch's assessments (JSON Lines or CSV) from the audit store.",
        discussion: """
            JSON Lines carry the full result (verdict, score, every finding with its citation and
            missing fields) and the audit hashes. CSV has one row per record.

            Example:
              oversight results 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 --format csv > results.csv
            """)

    @Argument(help: "Batch id.") var batch: String
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Output format: jsonl or csv.") var format = "jsonl"

    func validate() throws {
        guard BatchID(batch) != nil else { throw ValidationError("batch id must be a UUID, got \"\(batch)\"") }
        guard ["jsonl", "csv"].contains(format) else { throw ValidationError("unknown --format \"\(format)\"; use jsonl or csv") }
    }

    func run() throws {
        try runOrExit {
            let connection = try database.connect(applicationName: "oversight-results")
            // Through the views, so that an organisation's reader login sees its own batches.
            let exists = try connection.query("SELECT 1 FROM oversight.visible_batches WHERE batch_id = \(batch)::uuid")
            guard exists.rowCount == 1 else { throw CommandFailure("no batch \(batch) in this database (or not visible to this login)") }
            if format == "csv" { print("seq,record_id,verdict,score,applies,fired_rules,needs_information,input_sha256,row_sha256") }
            // Closed seq ranges: bounded pages whatever the planner's statistics say.
            let bounds = try connection.query("SELECT min(seq), max(seq) FROM oversight.results WHERE batch_id = \(batch)::uuid")
            let low = bounds.int64(0, 0) ?? 1, high = bounds.int64(0, 1) ?? 0
            for start in stride(from: low - 1, to: high, by: 5000) {
                let rows = try connection.query("""
                    SELECT seq, record_id, verdict, score, applies, result, encode(input_sha256, 'hex'),
                           encode(row_sha256, 'hex'), worker, assessed_at::text
                    FROM oversight.results WHERE batch_id = \(batch)::uuid AND seq > \(start) AND seq <= \(min(start + 5000, high))
                    ORDER BY seq
                    """)
                var text = ""
                for i in 0..<rows.rowCount {
                    let result = (try? JSONParser.parse(rows.string(i, 5)!)) ?? .null
                    if format == "jsonl" {
                        let line = JSONValue.object([
                            ("batch_id", .string(batch.lowercased())), ("seq", .number(Double(rows.int64(i, 0)!))),
                            ("record_id", rows.string(i, 1).map(JSONValue.string) ?? .null),
                            ("verdict", .string(rows.string(i, 2)!)), ("score", .number(Double(rows.int(i, 3)!))),
                            ("applies", .string(rows.string(i, 4)!)), ("result", result),
                            ("input_sha256", .string(rows.string(i, 6)!)), ("row_sha256", .string(rows.string(i, 7)!)),
                            ("worker", .string(rows.string(i, 8)!)), ("assessed_at", .string(rows.string(i, 9)!)),
                        ])
                        text += line.canonicalString + "\n"
                    } else {
                        var fired: [String] = [], unknown: [String] = []
                        // Engine 2 and later: findings per pack; engine 1: at the top.
                        var packs: [JSONValue] = [result]
                        if case .array(let list)? = result["packs"] { packs = list }
                        for pack in packs {
                            guard case .array(let findings)? = pack["findings"] else { continue }
                            for f in findings {
                                let rule = f["rule"]?.stringValue ?? ""
                                if f["outcome"]?.stringValue == "fired" { fired.append(rule) } else { unknown.append(rule) }
                            }
                        }
                        text += [rows.string(i, 0)!, csvField(rows.string(i, 1) ?? ""), rows.string(i, 2)!, rows.string(i, 3)!,
                                 rows.string(i, 4)!, csvField(fired.joined(separator: ";")), csvField(unknown.joined(separator: ";")),
                                 rows.string(i, 6)!, rows.string(i, 7)!].joined(separator: ",") + "\n"
                    }
                }
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
    }

    private func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the audit store schema (oversight.*) in PostgreSQL.",
        discussion: """
            Applies the SQL files of Schemas/sql in order, each once, and records them in
            oversight.schema_migrations. Safe to run again; the coordinator also runs it at start.

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
