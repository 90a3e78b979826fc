import Identifiers
import Assessment
import ArgumentParser
import AuditStore
import Foundation

/// `oversight audit export`: a sealed batch as plain files that a third party checks without
/// Oversight and without the database (Schemas/seal.md says how, exactly).
struct ExportAudit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a sealed batch's records, results, leaves, seals and signing keys to a directory, for verification without Oversight.",
        discussion: """
            Writes, into a new directory: batch.txt (the batch, its organisation and criteria), records.jsonl (each assessed record as its input_sha256 hashes it, in seq order), results.jsonl (each stored result, byte for byte), assessments.tsv (seq, input_sha256, row_sha256), seals.tsv (every signed statement of the batch: its fields, signing key and signature), seal-N.leaves (the leaves each seal signed) and keys.tsv (the signers' public keys with their fingerprints).

            Schemas/seal.md specifies the check: the hashes, the leaf order, the RFC 6962 tree, the statement's bytes and Ed25519. Every byte of every file is covered by it, so a changed byte anywhere fails the check. A verifier trusts a seal only if its signing key's fingerprint is one the organisation published (`oversight keys show coordinator.key` prints it; a standby coordinator signs with its own key, so publish both).

            The directory is written under a temporary name beside it and renamed when complete: an interrupted export leaves nothing half-written. Run as a login that may read the audit tables (as for `audit verify`).

            Example:
              oversight audit export 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 --out audit-0b7f2c4e
              python3 verify_export.py audit-0b7f2c4e --trust SHA256:4f1c0a9e2b7d8c3f5a6e1d0b9c8a7f6e
            """)

    @Argument(help: "Batch id.") var batch: String
    @Option(help: ArgumentHelp("Directory to create (it must not exist yet).", valueName: "dir")) var out: String
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard BatchID(batch) != nil else { throw ValidationError("batch id must be a UUID, got \"\(batch)\"") }
    }

    func run() throws {
        try runOrExit {
            let store = try AuditStore(conninfo: database.conninfo, applicationName: "oversight-audit-export")
            let id = BatchID(batch)!
            let fm = FileManager.default
            guard !fm.fileExists(atPath: out) else { throw CommandFailure("\(out) exists already; give a directory to create") }
            let partial = out + ".partial-\(getpid())"
            try? fm.removeItem(atPath: partial)
            do {
                try fm.createDirectory(atPath: partial, withIntermediateDirectories: true)
                let written = try Self.export(store, batchID: id, to: partial)
                try fm.moveItem(atPath: partial, toPath: out)
                print("exported batch \(id): \(plural(written.assessments, "assessment")), \(plural(Int64(written.seals), "seal")) signed by \(written.keys.joined(separator: ", ")) to \(out)")
                print("check it without Oversight as Schemas/seal.md says, trusting only the fingerprints the organisation published")
            } catch {
                try? fm.removeItem(atPath: partial)
                throw error
            }
        }
    }

    /// Writes the export files into `dir`; the number of assessments, seals and the signers'
    /// fingerprints.
    static func export(_ store: AuditStore, batchID: BatchID, to dir: String) throws -> (assessments: Int64, seals: Int, keys: [String]) {
        guard let batch = try store.batch(id: batchID) else { throw CommandFailure("no batch \(batchID) in this database (or not visible to this login)") }
        let seals = try store.seals(batchID: batchID)
        guard let newest = seals.last else {
            throw CommandFailure("batch \(batchID) has no seal yet (it is not completed): only a sealed batch can be exported")
        }
        guard !batch.organisation.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw CommandFailure("the batch's organisation name holds a control character; the export's text format cannot carry it")
        }
        guard let criteria = try store.criteriaSet(batchID: batchID) else { throw CommandFailure("batch \(batchID) has no criteria set") }

        var head = "format\toversight-audit-export/1\nbatch_id\t\(batchID)\norganisation\t\(batch.organisation)\ncriteria_sha256\t\(batch.criteriaSHA256.hexString)\n"
        for pack in criteria.packs { head += "pack_sha256\t\(pack.sha256.hexString)\n" }
        try Data(head.utf8).write(to: URL(fileURLWithPath: dir + "/batch.txt"))

        let records = try LineFile(dir + "/records.jsonl"), results = try LineFile(dir + "/results.jsonl"), rows = try LineFile(dir + "/assessments.tsv")
        var count: Int64 = 0
        try store.forEachAssessmentPage(batchID: batchID) { page in
            for row in page {
                // The record as its input_sha256 hashes it: a canonical record as stored, any other written canonically.
                var shape = JSONParser.Shape()
                guard let text = row.record, let parsed = try? JSONParser.parse(text, shape: &shape) else {
                    throw CommandFailure("seq \(row.seq): its submitted record is gone or does not parse; run `oversight audit verify \(batchID)`")
                }
                try records.append(shape.isCanonical ? text : parsed.canonicalBytes)
                guard !row.result.contains(0x0A) else { throw CommandFailure("seq \(row.seq): its stored result holds a line break; run `oversight audit verify \(batchID)`") }
                try results.append(row.result)
                try rows.append(Array("\(row.seq)\t\(row.inputSHA256.hexString)\t\(row.rowSHA256.hexString)".utf8))
                count += 1
            }
        }
        try records.close(); try results.close(); try rows.close()
        guard count == newest.assessments else {
            throw CommandFailure("the batch has \(count) assessments, its newest seal \(newest.assessments): run `oversight audit verify \(batchID)`")
        }

        var sealLines = "", keys: [[UInt8]] = []
        for seal in seals {
            let v2 = seal.statementVersion == 2
            func field(_ value: Int64?) -> String { v2 ? value.map(String.init) ?? "-" : "-" }
            let dead = (seal.deadLetterSeqs ?? []).map(String.init).joined(separator: ",")
            sealLines += [String(seal.seal), String(seal.statementVersion), v2 ? seal.sealedAt : "-", String(seal.assessments),
                          field(seal.accepted), field(seal.deadLettered), field(seal.rejected), v2 && !dead.isEmpty ? dead : "-",
                          seal.merkleRoot.hexString, seal.signingKey.hexString, seal.signature.hexString].joined(separator: "\t") + "\n"
            if !keys.contains(seal.signingKey) { keys.append(seal.signingKey) }
            let leaves = try LineFile(dir + "/seal-\(seal.seal).leaves")
            for leaf in seal.leaves { try leaves.append(Array("\(leaf.seq)\t\(leaf.rowSHA256.hexString)".utf8)) }
            try leaves.close()
        }
        try Data(sealLines.utf8).write(to: URL(fileURLWithPath: dir + "/seals.tsv"))
        let keyLines = keys.map { "\(keyFingerprint($0))\t\($0.hexString)\n" }.joined()
        try Data(keyLines.utf8).write(to: URL(fileURLWithPath: dir + "/keys.tsv"))
        return (count, seals.count, keys.map(keyFingerprint))
    }

    /// A file written a line at a time through a buffer (a million lines per file).
    final class LineFile {
        private let handle: FileHandle
        private var buffer: [UInt8] = []
        private let path: String

        init(_ path: String) throws {
            self.path = path
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                throw CommandFailure("cannot write \(path)")
            }
            self.handle = handle
            buffer.reserveCapacity(1 << 20)
        }

        func append(_ line: [UInt8]) throws {
            buffer += line
            buffer.append(0x0A)
            if buffer.count >= 1 << 20 { try flush() }
        }

        private func flush() throws {
            do { try handle.write(contentsOf: buffer) } catch { throw CommandFailure("cannot write \(path): \(error.localizedDescription)") }
            buffer.removeAll(keepingCapacity: true)
        }

        func close() throws {
            try flush()
            try handle.close()
        }
    }
}
