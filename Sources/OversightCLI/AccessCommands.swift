import ArgumentParser
import AuditStore
import Coordinator
import Foundation

/// How a new login gets its password: generated and printed once, read from a file, or none.
struct PasswordOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Read the login's password from the first line of this file (default: generate one and print it once).", valueName: "file"))
    var passwordFile: String?
    @Flag(help: "Set no password (for certificate, peer or GSSAPI authentication in pg_hba.conf).")
    var noPassword = false

    func validate() throws {
        if passwordFile != nil && noPassword { throw ValidationError("give either --password-file or --no-password") }
    }

    /// The clear-text password to set and whether it was generated; nil for none.
    func password() throws -> (String, generated: Bool)? {
        if noPassword { return nil }
        if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8),
                  let line = text.split(separator: "\n", omittingEmptySubsequences: false).first, !line.isEmpty else {
                throw CommandFailure("\(passwordFile): cannot read a password from its first line")
            }
            return (String(line), false)
        }
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return (String((0..<24).map { _ in alphabet[Int(generator.next(upperBound: UInt32(alphabet.count)))] }), true)
    }
}

func validateRoleName(_ role: String) throws {
    let bytes = Array(role.utf8)
    guard (1...63).contains(bytes.count), let first = bytes.first, (0x61...0x7A).contains(first) || first == 0x5F,
          bytes.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }),
          !role.hasPrefix("pg_") else {
        throw ValidationError("--role \"\(role)\" must be 1–63 lower-case letters, digits or '_', start with a letter or '_', and not begin with pg_")
    }
    guard !AuditStore.groupRoles.contains(role) else {
        throw ValidationError("--role \"\(role)\" is one of the group roles the schema creates; name the login itself (e.g. \(role)_1)")
    }
}

/// Sets the role up through a migration-defined function, with bound parameters only; the
/// password goes as a verifier computed here.
func grant(_ database: DatabaseOptions, role: String, password: PasswordOptions, call: (AuditStore, String?) throws -> Void) throws {
    let store = try database.store(applicationName: "oversight-grant")
    try store.migrate()
    let secret = try password.password()
    try call(store, secret?.0)
    if let secret, secret.generated {
        // Standard output only, once: the operator's to hand over; never logged.
        print("password for \(role): \(secret.0)")
        printError("store it in the analyst's ~/.pgpass (host:port:database:\(role):password); it is not shown again")
    }
}

struct GrantReaderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant-reader",
        abstract: "Create (or update) a read-only PostgreSQL login for an organisation's analyst.",
        discussion: """
            The login can read the analyst views (batch_progress, results, assessment_summary, findings, pack_results, questions, rejections, submitted_records, seals, rules), and row-level security shows it the batches of ORG only. It cannot change anything. Run as a PostgreSQL role that may create roles (the database owner or a superuser).

            Example:
              oversight grant-reader amnesty-tech --role anna \\
                  --database postgresql://admin@db/oversight
              psql "postgresql://anna@db/oversight" \\
                  -c 'SELECT * FROM oversight.batch_progress'
            """)

    @Argument(help: "The organisation whose batches the login may read.") var organisation: String
    @Option(help: "Name of the PostgreSQL login to create or update.") var role: String
    @OptionGroup var passwordOptions: PasswordOptions
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard Organisation.isValid(organisation) else {
            throw ValidationError("organisation \"\(organisation)\" may hold only lower-case letters, digits, '.', '_' and '-'")
        }
        try validateRoleName(role)
    }

    func run() throws {
        try runOrExit {
            try grant(database, role: role, password: passwordOptions) { store, password in
                try store.grantReader(role: role, organisation: organisation, password: password)
            }
            printError("\(role) reads the batches of \(organisation)")
        }
    }
}

struct GrantServiceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant-service",
        abstract: "Create (or update) a PostgreSQL login for a coordinator or for workers, with only what it needs.",
        discussion: """
            coordinator: intake (batches, jobs, rejections), dispatch bookkeeping, seals; reads assessments to count and seal them. worker: reads criteria packs and appends assessments and failure reports; it cannot read other results or change anything. Neither may UPDATE, DELETE or TRUNCATE an assessment. scaler: may only call oversight.pending_jobs(), the number of jobs waiting (for KEDA's PostgreSQL trigger); it reads no table. Apply the schema first (`oversight migrate` as the owner); the services then start without DDL rights.

            Example:
              oversight grant-service worker --role oversight_worker_eu1 \\
                  --database postgresql://admin@db/oversight
            """)

    @Argument(help: "coordinator, worker or scaler.") var service: String
    @Option(help: "Name of the PostgreSQL login to create or update.") var role: String
    @OptionGroup var passwordOptions: PasswordOptions
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard ["coordinator", "worker", "scaler"].contains(service) else {
            throw ValidationError("service must be coordinator, worker or scaler, got \"\(service)\"")
        }
        try validateRoleName(role)
    }

    func run() throws {
        try runOrExit {
            try grant(database, role: role, password: passwordOptions) { store, password in
                try store.grantService(role: role, service: service, password: password)
            }
            printError("\(role) may act as a \(service)")
        }
    }
}
