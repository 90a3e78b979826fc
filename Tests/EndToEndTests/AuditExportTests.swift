import Foundation
import Testing
import Assessment
import ChildProcess
import LibPQ
import TestSupport

let independentVerifier = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Deploy/audit/verify_export.py").path

/// Runs the independent check (Deploy/audit/verify_export.py) on an export directory.
func independentCheck(_ dir: String, trusting fingerprints: [String]) throws -> (status: Int32, output: String) {
    try ChildProcess.run(["/usr/bin/env", "python3", independentVerifier, dir] + fingerprints.flatMap { ["--trust", $0] })
}

/// Exports `batch` with the binary into a new directory under `base` and runs the independent
/// check on it, trusting the key the newest seal was signed with as the database has it.
func exportAndCheck(batch: String, conninfo: String, into dir: String) throws -> (status: Int32, output: String) {
    let db = try PGConnection(conninfo)
    let key = try db.query("SELECT signing_key FROM oversight.batch_seals WHERE batch_id = \(batch)::uuid ORDER BY seal DESC LIMIT 1").bytes(0, 0) ?? []
    let exported = try OversightBinary.runSplit(["audit", "export", batch, "--out", dir, "--database", conninfo])
    guard exported.status == 0 else { return (exported.status, exported.stderr) }
    return try independentCheck(dir, trusting: [keyFingerprint(key)])
}

/// A sealed batch verified by a third party: `oversight audit export` writes plain files, and a
/// short Python program written from Schemas/seal.md alone (Deploy/audit/verify_export.py: the
/// standard library and `cryptography`'s Ed25519) checks them, trusting only the fingerprint of
/// the key the coordinator signed with. A changed byte in any exported file fails the check.
@Suite(.serialized) struct AuditExportTests {
    func check(_ dir: String, trusting fingerprints: [String]) throws -> (status: Int32, output: String) {
        try independentCheck(dir, trusting: fingerprints)
    }

    @Test func anExportedBatchVerifiesWithoutOversightAndAnyChangedByteFails() throws {
        let system = try RunningSystem(workers: 1, label: "export")
        defer { _ = system.stop() }
        let file = system.directory + "/batch.jsonl"
        try writeRecords(300, seed: 53, to: file)
        let submitted = try system.submit(file)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let batch = try #require(submitted.stdout.split(separator: "\n").map(String.init).first { UUID(uuidString: $0) != nil })

        // The key the organisation publishes: read from the database, not from the export.
        let db = try PGConnection(system.conninfo)
        let signingKey = try #require(try db.query("SELECT signing_key FROM oversight.batch_seals WHERE batch_id = \(batch)::uuid ORDER BY seal DESC LIMIT 1").bytes(0, 0))
        let trusted = keyFingerprint(signingKey)

        let dir = system.directory + "/export"
        let exported = try OversightBinary.runSplit(["audit", "export", batch, "--out", dir, "--database", system.conninfo])
        #expect(exported.status == 0, "\(exported.stderr)")
        #expect(exported.stdout.contains("300 assessments, 1 seal signed by \(trusted)"), "\(exported.stdout)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files == ["assessments.tsv", "batch.txt", "keys.tsv", "records.jsonl", "results.jsonl", "seal-1.leaves", "seals.tsv"])
        #expect(!FileManager.default.fileExists(atPath: dir + ".partial-\(getpid())"))

        let good = try check(dir, trusting: [trusted])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("verified: 300 assessments; 1 seal(s) signed by trusted keys"), "\(good.output)")
        let stranger = try check(dir, trusting: ["SHA256:" + String(repeating: "0", count: 32)])
        #expect(stranger.status == 1 && stranger.output.contains("not a trusted key"), "\(stranger.output)")

        // A second export of the same batch is refused rather than mixed into the first.
        let again = try OversightBinary.runSplit(["audit", "export", batch, "--out", dir, "--database", system.conninfo])
        #expect(again.status != 0 && again.stderr.contains("exists already"), "\(again.stderr)")

        // One byte changed, at the start, the middle and the end of every file: each fails.
        var random = SplitMix64(seed: 7)
        for name in files {
            let original = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            for position in [0, Int(random.next() % UInt64(original.count)), original.count - 1] {
                let copy = system.directory + "/changed"
                try? FileManager.default.removeItem(atPath: copy)
                try FileManager.default.copyItem(atPath: dir, toPath: copy)
                var bytes = original
                bytes[position] ^= 0x01
                try bytes.write(to: URL(fileURLWithPath: copy + "/" + name))
                let changed = try check(copy, trusting: [trusted])
                #expect(changed.status == 1 && changed.output.hasPrefix("FAILED"), "\(name) byte \(position) changed: \(changed.output)")
            }
        }
    }

    @Test func aBatchThatIsNotThereIsNotExportedAndNothingIsWritten() throws {
        let conninfo = try TestDatabase.create("exportunsealed")
        let migrated = try OversightBinary.runSplit(["migrate", "--database", conninfo])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        let dir = NSTemporaryDirectory() + "oversight-export-\(UUID().uuidString)"
        let missing = try OversightBinary.runSplit(["audit", "export", UUID().uuidString.lowercased(), "--out", dir, "--database", conninfo])
        #expect(missing.status != 0 && missing.stderr.contains("no batch"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir), "nothing written")
    }
}
