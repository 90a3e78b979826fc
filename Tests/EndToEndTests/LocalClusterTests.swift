import Foundation
import Testing
import LibPQ
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The private cluster of `demo` and `local-db`, and what the system does when PostgreSQL goes
/// away under it: each test runs a cluster of its own, so stopping it disturbs no other test.
@Suite(.serialized) struct LocalClusterTests {
    /// A directory only its owner can enter (as root's home directory is on Debian).
    func privateDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "ovs-private-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return dir
    }

    @Test func aClusterStartsFromAPrivateDirectoryAndChecksPasswords() throws {
        let home = try privateDirectory()
        let data = home + "/checkout/.oversight/local-db"
        defer {
            _ = try? OversightBinary.runSplit(["local-db", "stop", "--data-dir", data])
            if let moved = try? String(contentsOfFile: data + "/oversight.cluster-location", encoding: .utf8) { try? FileManager.default.removeItem(atPath: moved) }
            try? FileManager.default.removeItem(atPath: home)
        }
        let started = try OversightBinary.runSplit(["local-db", "start", "--data-dir", data, "--unsafe-fast"])
        #expect(started.status == 0, "\(started.stderr)")
        if geteuid() == 0 {
            #expect(started.stderr.contains("cannot reach"), "as root, the cluster moves where postgres can reach it: \(started.stderr)")
        }
        let uri = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(uri.hasPrefix("postgresql://postgres@127.0.0.1:") && uri.contains("passfile="), "\(uri)")
        let attributes = try FileManager.default.attributesOfItem(atPath: data + "/pgpass")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(try PGConnection(uri).query("SELECT 1").int(0, 0) == 1)
        // scram-sha-256: the password is checked.
        #expect(throws: PQError.self) { _ = try PGConnection(try TestDatabase.login(uri, user: "postgres", password: "not-it")) }
        // Started again: the same cluster, the same address.
        let again = try OversightBinary.runSplit(["local-db", "start", "--data-dir", data])
        #expect(again.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == uri)
    }

    /// PostgreSQL restarted while a client submits: the coordinator retries, the client waits,
    /// nothing is refused and nothing is lost.
    @Test func aDatabaseRestartDuringSubmissionIsRiddenOut() throws {
        let dir = NSTemporaryDirectory() + "ovs-restart-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer {
            _ = try? OversightBinary.runSplit(["local-db", "stop", "--data-dir", dir])
            try? FileManager.default.removeItem(atPath: dir)
        }
        let started = try OversightBinary.runSplit(["local-db", "start", "--data-dir", dir, "--unsafe-fast"])
        #expect(started.status == 0, "\(started.stderr)")
        let conninfo = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let system = try FaultySystem(label: "pgrestart", conninfo: conninfo, workers: 1)
        defer { system.stopAll() }
        try system.startWorkers()
        let file = system.directory + "/batch.jsonl"
        try writeRecords(40_000, seed: 17, to: file)
        let submit = try system.submitInBackground(file)
        defer { submit.stop() }
        let db = try PGConnection(conninfo)
        try waitUntil("some chunks are stored") { (try db.query("SELECT count(*) FROM oversight.jobs").int(0, 0) ?? 0) > 0 }
        let stopped = try OversightBinary.runSplit(["local-db", "stop", "--data-dir", dir])
        #expect(stopped.status == 0, "\(stopped.stderr)")
        try waitUntil("a service notices the outage") {
            ([system.coordinator] + system.workers.compactMap { $0 }).contains { $0.log.contains("retrying") || $0.log.contains("reconnect") }
        }
        let restarted = try OversightBinary.runSplit(["local-db", "start", "--data-dir", dir])
        #expect(restarted.status == 0, "\(restarted.stderr)")
        try waitUntil("submit finished", within: 180) { !submit.process.isRunning }
        #expect(submit.process.terminationStatus == 0, "\(submit.log)\n\(system.logs)")
        #expect(!submit.log.contains("SELECT") && !submit.log.contains("INSERT"), "no SQL on a user's screen: \(submit.log)")
        let batch = try #require(batchID(fromSubmitLog: submit.log))
        try system.expectExactlyOnce(batch: batch, accepted: 40_000)
    }
}
