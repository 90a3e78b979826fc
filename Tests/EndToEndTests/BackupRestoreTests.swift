import Foundation
import Testing
import ChildProcess
import LibPQ
import TestSupport

/// The audit trail outlives its installation: a sealed batch, dumped with `pg_dump`, restores into
/// a fresh cluster with `pg_restore` once `oversight migrate --roles-only` has made the roles its
/// policies name, and verifies there. Without the roles the restore fails, as it did before.
@Suite(.serialized) struct BackupRestoreTests {
    @Test func aDumpRestoresIntoAFreshClusterAndVerifies() throws {
        let system = try RunningSystem(workers: 1, label: "backup")
        defer { _ = system.stop() }
        let file = system.directory + "/batch.jsonl"
        try writeRecords(500, seed: 47, to: file)
        let submitted = try system.submit(file)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let batch = try #require(submitted.stdout.split(separator: "\n").map(String.init).first { UUID(uuidString: $0) != nil })
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted()
        let bin = ProcessInfo.processInfo.environment["OVERSIGHT_PG_BINDIR"] ?? "/usr/lib/postgresql/\(versions.last ?? 15)/bin"
        let dump = system.directory + "/oversight.dump"
        let dumped = try ChildProcess.run(["\(bin)/pg_dump", "--format=custom", "--file=\(dump)", "--dbname=\(system.conninfo)"])
        #expect(dumped.status == 0, "\(dumped.output)")

        // A fresh cluster: none of the program's roles exist there.
        let dataDir = NSTemporaryDirectory() + "oversight-restore-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer {
            _ = try? OversightBinary.runSplit(["local-db", "stop", "--data-dir", dataDir])
            try? FileManager.default.removeItem(atPath: dataDir)
        }
        let started = try OversightBinary.runSplit(["local-db", "start", "--data-dir", dataDir, "--unsafe-fast"], timeout: 120)
        #expect(started.status == 0, "\(started.stderr)")
        let fresh = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let admin = try PGConnection(TestDatabase.on(fresh, database: "postgres"))
        try admin.runScript("CREATE DATABASE without_roles")
        let refused = try ChildProcess.run(["\(bin)/pg_restore", "--exit-on-error", "--dbname=\(TestDatabase.on(fresh, database: "without_roles"))", dump])
        #expect(refused.status != 0 && refused.output.contains("oversight_"), "a restore without the roles fails on them: \(refused.output)")

        let roles = try OversightBinary.runSplit(["migrate", "--roles-only", "--database", fresh])
        #expect(roles.status == 0, "\(roles.stderr)")
        #expect(roles.stdout.contains("created oversight_coordinator, oversight_worker, oversight_reader"), "\(roles.stdout)")
        let again = try OversightBinary.runSplit(["migrate", "--roles-only", "--database", fresh])
        #expect(again.stdout.contains("exist already"), "\(again.stdout)")
        let restored = try ChildProcess.run(["\(bin)/pg_restore", "--exit-on-error", "--dbname=\(fresh)", dump])
        #expect(restored.status == 0, "\(restored.output)")

        let verify = try OversightBinary.runSplit(["audit", "verify", batch, "--database", fresh])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("500 accepted = 500 assessed + 0 dead-lettered"), "\(verify.stdout)")
        let copy = try PGConnection(fresh)
        #expect(try copy.query("SELECT count(*) FROM oversight.assessments WHERE batch_id = \(batch)::uuid").int(0, 0) == 500)
        // The restored schema is current: migrate has nothing to apply.
        let migrated = try OversightBinary.runSplit(["migrate", "--database", fresh])
        #expect(migrated.stdout.contains("up to date"), "\(migrated.stdout)\(migrated.stderr)")
    }
}
