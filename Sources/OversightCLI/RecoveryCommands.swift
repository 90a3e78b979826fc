import ArgumentParser
import Assessment
import Foundation
import LibPQ
import Wire

struct DeadLettersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deadletters",
        abstract: "List jobs given up after their last attempt, with their error and attempt history.",
        discussion: """
            A job is dead-lettered when its scoring failed, or its worker died holding it, as many times as the coordinator allows (--max-attempts, default 3). Queue them again with `oversight retry BATCH`.

            Example:
              oversight deadletters --database postgresql://localhost/oversight
              oversight deadletters 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 --json
            """)

    @Argument(help: "Batch id; all batches when omitted.") var batch: String?
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print JSON Lines instead of a table.") var json = false

    func validate() throws {
        if let batch, BatchID(batch) == nil { throw ValidationError("batch id must be a UUID, got \"\(batch)\"") }
    }

    func run() throws {
        try runOrExit {
            let connection = try database.connect(applicationName: "oversight-deadletters")
            if let batch, try connection.query("SELECT 1 FROM oversight.visible_batches WHERE batch_id = \(batch)::uuid").rowCount == 0 {
                throw CommandFailure("no batch \(batch) in this database (or not visible to this login)")
            }
            let filter = batch ?? ""
            let rows = try connection.query("""
                SELECT d.batch_id::text, d.seq, j.line, d.attempts, d.last_error, d.dead_at::text,
                       ARRAY(SELECT f.attempt || ' ' || f.worker || ': ' || f.reason FROM oversight.job_failures f
                             WHERE f.batch_id = d.batch_id AND f.seq = d.seq ORDER BY f.failed_at)::text
                FROM oversight.dead_letters d
                LEFT JOIN oversight.jobs j ON j.batch_id = d.batch_id AND j.seq = d.seq
                WHERE d.retried_at IS NULL AND (\(filter) = '' OR d.batch_id::text = lower(\(filter)))
                  AND NOT EXISTS (SELECT 1 FROM oversight.results a WHERE a.batch_id = d.batch_id AND a.seq = d.seq)
                ORDER BY d.batch_id, d.seq
                """)
            if json {
                for i in 0..<rows.rowCount {
                    print(JSONValue.object([
                        ("batch_id", .string(rows.string(i, 0)!)), ("seq", .number(Double(rows.int64(i, 1)!))),
                        ("line", rows.int64(i, 2).map { .number(Double($0)) } ?? .null),
                        ("attempts", .number(Double(rows.int(i, 3)!))), ("last_error", .string(rows.string(i, 4)!)),
                        ("dead_at", .string(rows.string(i, 5)!)), ("history", .string(rows.string(i, 6) ?? "{}")),
                    ]).canonicalString)
                }
                return
            }
            if rows.rowCount == 0 { print("no dead letters"); return }
            print("BATCH                                 SEQ      LINE  ATTEMPTS  LAST ERROR")
            for i in 0..<rows.rowCount {
                print(rows.string(i, 0)!.padding(toLength: 38, withPad: " ", startingAt: 0)
                      + String(rows.int64(i, 1)!).padding(toLength: 9, withPad: " ", startingAt: 0)
                      + (rows.int64(i, 2).map(String.init) ?? "-").padding(toLength: 6, withPad: " ", startingAt: 0)
                      + String(rows.int(i, 3)!).padding(toLength: 10, withPad: " ", startingAt: 0)
                      + rows.string(i, 4)!)
            }
        }
    }
}

/// A request to the coordinator about one batch, answered with its progress.
struct BatchRequestOptions: ParsableArguments {
    @Argument(help: "Batch id.") var batch: String
    @OptionGroup var connection: CoordinatorConnectionOptions

    func validate() throws {
        guard BatchID(batch) != nil else { throw ValidationError("batch id must be a UUID, got \"\(batch)\"") }
    }

    func send(_ request: (BatchID) -> ClientRequest) throws -> BatchProgress {
        let client = try connection.client()
        let reply = try client.request(request(BatchID(batch)!))
        guard case .status(let progress) = reply else { throw CommandFailure("unexpected answer from the coordinator: \(reply)") }
        return progress
    }
}

struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Queue a batch's dead-lettered jobs again.",
        discussion: """
            The coordinator marks the batch's dead letters as retried (they stay in the history) and dispatches those jobs again, each with a fresh set of attempts.

            Example:
              oversight retry 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 \\
                  --coordinator tcp://127.0.0.1:5556
            """)

    @OptionGroup var request: BatchRequestOptions

    func run() throws {
        try runOrExit {
            let progress = try request.send { .retry(batchID: $0) }
            print("batch \(progress.batchID): \(progress.accepted) accepted, \(progress.done) assessed, \(progress.failed) dead-lettered; running again")
        }
    }
}

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Stop dispatching what is left of a batch; finished assessments stay.",
        discussion: """
            Example:
              oversight cancel 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 \\
                  --coordinator tcp://127.0.0.1:5556
            """)

    @OptionGroup var request: BatchRequestOptions

    func run() throws {
        try runOrExit {
            let progress = try request.send { .cancel(batchID: $0) }
            print("batch \(progress.batchID) cancelled: \(progress.done) of \(progress.accepted) assessed")
        }
    }
}
