import Identifiers
import Foundation
import Testing
import Assessment
import LibPQ
import TestSupport
import Wire

/// The client's path, as a user meets it: oversized lines, resuming with the wrong file, empty
/// input, spreadsheet CSV, and a coordinator and workers that sat idle.
@Suite(.serialized) struct ClientPathTests {
    func count(_ system: FaultySystem, _ sql: PGQuery) throws -> Int {
        try PGConnection(system.conninfo).query(sql).int(0, 0) ?? -1
    }

    /// A record over --max-record-bytes, and a line over what the wire carries, are each one
    /// rejection by line; the records around them are accepted and assessed.
    @Test func anOversizedRecordIsOneRejectionAndTheRestGoesOn() throws {
        let system = try FaultySystem(label: "oversized", workers: 1)
        defer { system.stopAll() }
        try system.startWorkers()
        let valid = { (id: String) in #"{"id":"\#(id)","system":{"type":"alpr"}}"# }
        let big = #"{"id":"big","notes":""# + String(repeating: "x", count: 1_800_000) + #""}"#
        let huge = String(repeating: "y", count: 17 << 20)
        let file = system.directory + "/mixed.jsonl"
        try [valid("a"), big, valid("b"), huge, valid("c")].joined(separator: "\n").appending("\n").write(toFile: file, atomically: true, encoding: .utf8)
        let result = try OversightBinary.runSplit(["submit", file, "--coordinator", system.clientEndpoint, "--wait"])
        #expect(result.status == 0, "\(result.stderr)\n\(system.logs)")
        #expect(result.stderr.contains("mixed.jsonl:2:"), "\(result.stderr)")
        #expect(result.stderr.contains("mixed.jsonl:4:"), "\(result.stderr)")
        let batch = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try count(system, "SELECT count(*) FROM oversight.assessments WHERE batch_id = \(batch)::uuid") == 3)
        let kept = try PGConnection(system.conninfo).query("""
            SELECT line, raw_bytes, length(raw), raw_sha256 FROM oversight.rejected_records WHERE batch_id = \(batch)::uuid ORDER BY line
            """)
        #expect(kept.rowCount == 2)
        #expect(kept.int64(0, 0) == 2 && kept.int64(0, 1) == Int64(big.utf8.count) && kept.int(0, 2) == 65_536)
        #expect(kept.int64(1, 0) == 4 && kept.int64(1, 1) == Int64(huge.utf8.count) && kept.bytes(1, 3) == AuditHash.sha256(Array(huge.utf8)))
    }

    /// Resuming a batch with another file is refused with what to do; the batch keeps only the
    /// first file's records.
    @Test func resumingWithAnotherFileIsRefused() throws {
        let system = try FaultySystem(label: "splice", workers: 0)
        defer { system.stopAll() }
        let first = system.directory + "/first.jsonl", other = system.directory + "/other.jsonl"
        try writeRecords(3_000, seed: 1, to: first)
        try writeRecords(3_000, seed: 2, to: other)
        let batch = BatchID()
        let id = batch.description
        // An interrupted submission: the first 1,000 lines stored in two chunks, never closed.
        let client = try RawPeer(system.clientEndpoint)
        try client.send(ClientRequest.open(batchID: batch, name: "first", packs: [.builtIn("privacy-baseline")], source: "first.jsonl").encode())
        _ = try client.reply()
        let lines = try String(contentsOfFile: first, encoding: .utf8).split(separator: "\n").prefix(1_000)
        let records = lines.enumerated().map { SubmittedRecord(line: Int64($0.offset + 1), body: .json(Array($0.element.utf8))) }
        for (n, part) in [records[0..<600], records[600..<1_000]].enumerated() {
            try client.send(ClientRequest.chunk(batchID: batch, number: UInt64(n + 1), records: Array(part)).encode())
            guard case .acknowledged = try client.reply() else { Issue.record("chunk \(n + 1) not stored"); return }
        }
        // Results of a batch still receiving say so (nothing is assessed: no workers).
        let early = try OversightBinary.runSplit(["results", id, "--database", system.conninfo])
        #expect(early.status == 0 && early.stdout.isEmpty && early.stderr.contains("still receiving records: 0 records of 1000"), "\(early.stderr)")
        let submit = ["--coordinator", system.clientEndpoint, "--batch-id", id, "--pack", "privacy-baseline"]
        let again = try OversightBinary.runSplit(["submit", other] + submit)
        #expect(again.status != 0)
        #expect(again.stderr.contains("holds other input than"), "\(again.stderr)")
        #expect(again.stderr.contains("without --batch-id"), "\(again.stderr)")
        #expect(try count(system, "SELECT count(*) FROM oversight.jobs WHERE batch_id = \(id)::uuid") == 1_000)
        // The same file resumes after line 1,000, whatever its chunk size.
        let same = try OversightBinary.runSplit(["submit", first] + submit)
        #expect(same.status == 0, "\(same.stderr)")
        #expect(try count(system, "SELECT count(*) FROM oversight.jobs WHERE batch_id = \(id)::uuid") == 3_000)
        let lineSum = try count(system, "SELECT sum(line)::int FROM oversight.jobs WHERE batch_id = \(id)::uuid")
        #expect(lineSum == 3_000 * 3_001 / 2, "every line once")
    }

    /// Empty input, and a CSV whose header names no field, make no batch and print no id.
    @Test func emptyOrUnreadableInputMakesNoBatch() throws {
        let system = try FaultySystem(label: "empty", workers: 0)
        defer { system.stopAll() }
        let inputs: [(String, String)] = [("empty.jsonl", ""), ("blank.jsonl", "\n  \n\n"), ("header.csv", "system.type,operator.country\n"),
                                          ("unknown.csv", "system.type,colour\nalpr,red\n")]
        for (name, text) in inputs {
            let file = system.directory + "/" + name
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let result = try OversightBinary.runSplit(["submit", file, "--coordinator", system.clientEndpoint])
            #expect(result.status != 0, "\(name): \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(name): no batch id printed: \(result.stdout)")
        }
        #expect(try count(system, "SELECT count(*) FROM oversight.batches") == 0)
        let binary = system.directory + "/photo.jsonl"
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00]).write(to: URL(fileURLWithPath: binary))
        let refused = try OversightBinary.runSplit(["submit", binary, "--coordinator", system.clientEndpoint])
        #expect(refused.status != 0 && refused.stderr.contains("not a text file"), "\(refused.stderr)")
        #expect(try count(system, "SELECT count(*) FROM oversight.batches") == 0)
    }

    /// What a spreadsheet's "CSV UTF-8" writes: a byte-order mark before a quoted header.
    @Test func aByteOrderMarkBeforeAQuotedHeaderIsAccepted() throws {
        let system = try FaultySystem(label: "bom", workers: 1)
        defer { system.stopAll() }
        try system.startWorkers()
        let file = system.directory + "/sheet.csv"
        try Data([0xEF, 0xBB, 0xBF] + Array("\"system.type\",\"operator.country\"\nalpr,US\nfacial_recognition,DE\n".utf8))
            .write(to: URL(fileURLWithPath: file))
        let result = try OversightBinary.runSplit(["submit", file, "--coordinator", system.clientEndpoint, "--wait"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("completed: 2 assessed"), "\(result.stderr)")
    }

    /// An owner thread that ends while its process runs takes the process down, loudly, rather
    /// than leaving a coordinator that no longer answers.
    @Test func aThreadThatEndsTakesItsProcessDown() throws {
        let system = try FaultySystem(label: "threadend", workers: 0, coordinatorEnvironment: ["OVERSIGHT_FAULT_END_STORE_THREAD": "1"])
        defer { system.stopAll() }
        let file = system.directory + "/one.jsonl"
        try writeRecords(5, seed: 1, to: file)
        let submit = try system.submitInBackground(file)
        defer { submit.stop() }
        try waitUntil("the coordinator exits") { !system.coordinator.process.isRunning }
        #expect(system.coordinator.process.terminationStatus == 70)
        #expect(system.coordinator.log.contains("thread oversight-store ended while the process was still running"), "\(system.coordinator.log)")
    }

    /// Owner threads outlive their idle periods (they once ended after one idle hour): with the
    /// period shortened, the coordinator and a worker sit through many, then still do a batch.
    @Test func threadsOutliveTheirIdlePeriods() throws {
        let system = try FaultySystem(label: "idle", workers: 1, coordinatorEnvironment: ["OVERSIGHT_FAULT_IDLE_SECONDS": "0.05"])
        defer { system.stopAll() }
        system.workerEnvironment = ["OVERSIGHT_FAULT_IDLE_SECONDS": "0.05"]
        try system.startWorkers()
        func idles(_ log: String, _ thread: String) -> Int {
            log.split(separator: "\n").filter { $0.contains("idle, still waiting for work") && $0.contains("thread=\(thread)") }.count
        }
        try waitUntil("every owner thread idled several times") {
            let coordinator = system.coordinator.log, worker = system.workers[0]?.log ?? ""
            return idles(coordinator, "store") >= 5 && idles(coordinator, "seal") >= 5 && idles(worker, "scoring") >= 5 && idles(worker, "writing") >= 5
        }
        let file = system.directory + "/after.jsonl"
        try writeRecords(500, seed: 9, to: file)
        let result = try OversightBinary.runSplit(["submit", file, "--coordinator", system.clientEndpoint, "--wait"], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)\n\(system.logs)")
        #expect(result.stderr.contains("completed: 500 assessed"), "\(result.stderr)")
    }

    /// A pretty-printed .json file (one record, or an array), repeated ids reported with both
    /// lines (and refused with --unique-ids), and --strict's exit status.
    @Test func jsonDocumentsRepeatedIdsAndStrict() throws {
        let system = try FaultySystem(label: "jsondoc", workers: 1)
        defer { system.stopAll() }
        try system.startWorkers()
        let one = system.directory + "/one.json"
        try "{\n  \"id\": \"solo\",\n  \"system\": {\"type\": \"alpr\"}\n}\n".write(toFile: one, atomically: true, encoding: .utf8)
        let single = try OversightBinary.runSplit(["submit", one, "--coordinator", system.clientEndpoint, "--wait"])
        #expect(single.status == 0 && single.stderr.contains("completed: 1 assessed, 0 failed, 0 rejected"), "\(single.stderr)")

        let array = system.directory + "/many.json"
        try """
            [
              {"id": "a", "system": {"type": "alpr"}},
              {"id": "b", "system": {"type": "toaster"}},
              {"id": "a", "system": {"type": "gunshot_detection"}}
            ]

            """.write(toFile: array, atomically: true, encoding: .utf8)
        let reported = try OversightBinary.runSplit(["submit", array, "--coordinator", system.clientEndpoint, "--wait"])
        #expect(reported.status == 0, "\(reported.stderr)")
        #expect(reported.stderr.contains("many.json:4: record id \"a\" was already used on line 2"), "\(reported.stderr)")
        #expect(reported.stderr.contains("many.json:3:"), "the bad record by its line: \(reported.stderr)")
        #expect(reported.stderr.contains("completed: 2 assessed, 0 failed, 1 rejected"), "\(reported.stderr)")
        let batch = reported.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let status = try OversightBinary.runSplit(["status", batch, "--json", "--database", system.conninfo])
        #expect(try JSONParser.parse(status.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["duplicate_record_ids"] == .number(1), "\(status.stdout)")
        #expect(try JSONParser.parse(status.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["created_at"]?.stringValue?.hasSuffix("Z") == true)

        let strict = try OversightBinary.runSplit(["submit", array, "--coordinator", system.clientEndpoint, "--wait", "--unique-ids", "--strict"])
        #expect(strict.status == 3, "\(strict.stderr)")
        #expect(strict.stderr.contains("completed: 1 assessed, 0 failed, 2 rejected"), "\(strict.stderr)")
        let unique = strict.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let why = try PGConnection(system.conninfo).query("SELECT field, message FROM oversight.rejected_records WHERE batch_id = \(unique)::uuid AND line = 4")
        #expect(why.string(0, 0) == "id" && why.string(0, 1)?.contains("line 2") == true)
    }
}

