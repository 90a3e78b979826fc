import ArgumentParser
import Foundation
import Logging
import Observability
import AuditStore

/// Where the audit store is. Follows libpq: a URI or `key=value` string; without one,
/// `OVERSIGHT_DATABASE_URL`; without that, libpq's own `PGHOST`, `PGSERVICE`, … as psql.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "PostgreSQL connection string or URI (libpq syntax), e.g. postgresql://oversight@db/oversight?sslmode=verify-full.",
        discussion: "Falls back to OVERSIGHT_DATABASE_URL, then to libpq's environment (PGHOST, PGPORT, PGUSER, PGSERVICE, PGPASSFILE, …). Put passwords in ~/.pgpass or a service file, not on the command line.",
        valueName: "url"))
    var database: String?

    var conninfo: String {
        database ?? ProcessInfo.processInfo.environment["OVERSIGHT_DATABASE_URL"] ?? ""
    }

    func validate() throws {
        if let database, AuditStore.conninfoHasPassword(database) {
            throw ValidationError("""
                --database contains a password, which any user of this machine can read in the process list. \
                Put it in ~/.pgpass (or the file PGPASSFILE names), a service file (PGSERVICE), or the \
                PGPASSWORD environment variable, and give --database without it.
                """)
        }
    }

    /// The audit store at `conninfo`; `reading`: a session for reports and pages (JIT off: it
    /// spent half a second compiling every view query).
    func store(applicationName: String, reading: Bool = false) throws -> AuditStore {
        do {
            return reading ? try AuditStore.reading(conninfo: conninfo, applicationName: applicationName)
                           : try AuditStore(conninfo: conninfo, applicationName: applicationName)
        } catch {
            // libpq takes a string that is neither a URI nor key=value as a database name, and
            // then talks of sockets; say what it did.
            let given = conninfo.trimmingCharacters(in: .whitespaces)
            if !given.isEmpty, !given.hasPrefix("postgres://"), !given.hasPrefix("postgresql://"), !given.contains("=") {
                throw CommandFailure("""
                    --database "\(given)" is neither a URI (postgresql://user@host:5432/oversight) nor key=value settings \
                    (host=db.example dbname=oversight user=oversight), so libpq took it as the name of a database on the \
                    default server, and could not connect: \(AuditStore.refusal(error) ?? "\(error)")
                    """)
            }
            throw error
        }
    }
}

struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Log format: text (one readable line per event) or json (one JSON object per line, for a log store: timestamp, level, message, service, and each field such as batch or worker as a key of its own).")
    var logFormat: String = "text"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("unknown --log-level \"\(logLevel)\"; use trace, debug, info, notice, warning, error or critical")
        }
        guard ["text", "json"].contains(logFormat) else {
            throw ValidationError("unknown --log-format \"\(logFormat)\"; use text or json")
        }
    }

    func logger(_ label: String) -> Logger {
        let json = logFormat == "json"
        var logger = Logger(label: label) { json ? JSONLogHandler(label: $0) as any LogHandler : StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}

/// Errors that end a command: printed as `oversight: …` with exit code 1, no stack trace.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func runOrExit(_ body: () throws -> Void) throws {
    do { try body() } catch let error as ValidationError {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch let error as ExitCode {
        throw error
    } catch where AuditStore.userMessage(error) != nil {
        // No SQL on a user's screen: the server's words, and what to do.
        printError(AuditStore.userMessage(error)!)
        throw ExitCode.failure
    } catch {
        printError("\(error)")
        throw ExitCode.failure
    }
}
