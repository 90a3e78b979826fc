import Identifiers
import Assessment
import ArgumentParser
import AuditStore
import Coordinator
import Foundation
import Wire
import ZeroMQ

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check that a batch's audit trail is what the coordinator sealed, or export it for a check without Oversight.",
        subcommands: [VerifyAudit.self, ExportAudit.self])
}

struct VerifyAudit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute every row hash and the Merkle root of a batch and check its signed seal.",
        discussion: """
            When a batch completes, the coordinator seals it: the Merkle root of its assessments' row hashes, signed with the coordinator's Ed25519 key, in oversight.batch_seals. This command reads every assessment back, recomputes its row hash from the stored content (and its input hash from the submitted record), rebuilds the root and checks the signature, showing progress as it goes (a million rows take about 20 s). It names each altered, missing or extra row and exits 1 if there is any; 0 means the batch is exactly as sealed.

            With --trusted-key (the coordinator's public .key file) it also checks that the seal was made by that key, not by someone who rewrote rows and re-signed them.

            Example:
              oversight audit verify 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70 \\
                  --trusted-key coordinator.key
            """)

    @Argument(help: "Batch id.") var batch: String
    @Option(help: ArgumentHelp("Check only this seal (by number); default: every seal of the batch, rows against the newest.", valueName: "n"))
    var seal: Int?
    @Option(help: ArgumentHelp("The coordinator's public key file; the seal must be signed by its signing key.", valueName: "file"))
    var trustedKey: String?
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard BatchID(batch) != nil else { throw ValidationError("batch id must be a UUID, got \"\(batch)\"") }
    }

    func run() throws {
        try runOrExit {
            var trusted: [UInt8]?
            if let trustedKey {
                let certificate = try CertificateFile.read(trustedKey)
                guard let key = certificate["signing", "ed25519-public-key"].flatMap(Z85.decode), key.count == 32 else {
                    throw CommandFailure("\(trustedKey): no `signing` / `ed25519-public-key`; give the coordinator's .key file")
                }
                trusted = key
            }
            let store = try AuditStore(conninfo: database.conninfo, applicationName: "oversight-audit")
            let id = BatchID(batch)!
            // Progress on a terminal, or every few seconds in a log once it takes a while.
            var display = ProgressDisplay(label: "verifying")
            let started = Date()
            var shown = false
            let found = try store.verify(batchID: id, trustedKey: trusted, seal: seal) { done, total in
                guard display.interactive || Date().timeIntervalSince(started) > 5 else { return }
                display.update(done: done, total: total)
                shown = true
            }
            guard let report = found else {
                throw CommandFailure("no batch \(id) in this database (or not visible to this role)")
            }
            if shown {
                display.update(done: report.rows, total: report.seal?.assessments ?? report.rows, force: true)
                display.finish()
            }
            for seal in report.sealsChecked {
                let counts = seal.accepted.map { "\($0) accepted = \(seal.assessments) assessed + \(seal.deadLettered ?? 0) dead-lettered, \(seal.rejected ?? 0) rejected" }
                    ?? "\(plural(seal.assessments, "assessment")) (a version 1 seal: it does not sign the batch's counts, so completeness is checked against the database only)"
                print("batch \(report.batchID) (organisation \(report.organisation)): seal \(seal.seal) of \(seal.sealedAt): \(counts)")
                print("  signed by \(keyFingerprint(seal.signingKey))\(trusted == nil ? " (not checked against a trusted key; see --trusted-key)" : "")")
            }
            if let trusted, let seal = report.seal, trusted != seal.signingKey {
                print("the trusted key is \(keyFingerprint(trusted)); the seal was signed by \(keyFingerprint(seal.signingKey))")
            }
            for problem in report.problems { print(problem.description) }
            if report.ok {
                print("verified: \(plural(report.rows, "assessment")) recomputed; every row hash, the Merkle root and the signature match, and every accepted job is covered")
            } else {
                let altered = Set(report.problems.compactMap { if case .altered(let seq, _, _) = $0 { seq } else { nil } }).count
                let missing = report.problems.filter { if case .missing = $0 { true } else { false } }.count
                let extra = report.problems.filter { if case .extra = $0 { true } else { false } }.count
                let uncovered = report.problems.filter { if case .uncovered = $0 { true } else { false } }.count
                printError("verification FAILED: \(altered) altered, \(missing) missing, \(extra) extra rows, \(uncovered) accepted jobs not covered; \(plural(report.problems.count, "problem")) in all")
                throw ExitCode.failure
            }
        }
    }
}
