import Identifiers
import ArgumentParser
import Assessment
import Foundation
import AuditStore
import Wire

struct DeadLettersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deadletters",
        abstract: "List jobs given up after their last attempt, with their error and attempt history.",
        discussion: """
            A job is dead-lettered when its scoring failed, or its worker died holding it alone, as many times as the coordinator allows (--max-attempts, default 3). Queue them again with `oversight retry BATCH`.

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
            let store = try database.store(applicationName: "oversight-deadletters")
            let id = batch.flatMap(BatchID.init)
            if let id, try !store.isVisible(batchID: id) {
                throw CommandFailure("no batch \(id) in this database (or not visible to this login)")
            }
            let letters = try store.deadLetters(batchID: id, openOnly: true)
            if json {
                for letter in letters {
                    print(JSONValue.object([
                        ("batch_id", .string(letter.batchID.description)), ("seq", .number(Double(letter.seq))),
                        ("line", letter.line.map { .number(Double($0)) } ?? .null),
                        ("attempts", .number(Double(letter.attempts))), ("last_error", .string(letter.lastError)),
                        ("dead_at", .string(letter.deadAt)),
                        ("history", .array(letter.failures.map { f in
                            .object([("attempt", .number(Double(f.attempt))), ("worker", .string(f.worker)),
                                     ("reason", .string(f.reason)), ("failed_at", .string(f.failedAt))])
                        })),
                    ]).canonicalString)
                }
                return
            }
            if letters.isEmpty { print("no dead letters"); return }
            print("BATCH                                 SEQ      LINE  ATTEMPTS  LAST ERROR")
            for letter in letters {
                print(letter.batchID.description.padding(toLength: 38, withPad: " ", startingAt: 0)
                      + String(letter.seq).padding(toLength: 9, withPad: " ", startingAt: 0)
                      + (letter.line.map(String.init) ?? "-").padding(toLength: 6, withPad: " ", startingAt: 0)
                      + String(letter.attempts).padding(toLength: 10, withPad: " ", startingAt: 0)
                      + letter.lastError)
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
