import ArgumentParser
import Console
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the read-only web console: batches, their records, dead letters, rejections and seals.",
        discussion: """
            Pages for people and a JSON API behind each one (/api/…, described in Schemas/console.openapi.json), read through the reader views: give it a reader login (`oversight grant-reader`), and it shows that organisation's batches only. It writes nothing.

            It listens on loopback unless told otherwise; another address needs TLS (--tls-cert and --tls-key, PEM files) or --behind-proxy (a reverse proxy that terminates TLS in front of it). With --users FILE it asks for a user name and password (HTTP basic auth) against the bcrypt hashes `oversight console-user add` keeps there. Every page sends a Content-Security-Policy that runs no script, and every piece of record text is escaped.

            Example:
              oversight serve --database "postgresql://ngo_reader@db/oversight"
              oversight serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem \\
                  --users console.users --database "postgresql://ngo_reader@db/oversight"
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: ArgumentHelp("Address and port to listen on.", valueName: "host:port")) var listen = "127.0.0.1:8080"
    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("The server's certificate chain (PEM), for HTTPS.", valueName: "file")) var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The certificate's private key (PEM).", valueName: "file")) var tlsKey: String?
    @Flag(name: .customLong("behind-proxy"), help: "Allow a non-loopback address without TLS: a reverse proxy in front terminates TLS.") var behindProxy = false
    @Option(help: ArgumentHelp("Users and bcrypt hashes (`oversight console-user add`): ask for basic auth.", valueName: "file")) var users: String?

    /// Host and port of `--listen` (`[::1]:8080` for IPv6).
    static func parse(_ listen: String) -> (host: String, port: Int)? {
        var host: Substring, port: Substring
        if listen.hasPrefix("[") {
            guard let close = listen.firstIndex(of: "]"), listen[listen.index(after: close)...].hasPrefix(":") else { return nil }
            host = listen[listen.index(after: listen.startIndex)..<close]
            port = listen[listen.index(close, offsetBy: 2)...]
        } else {
            guard let colon = listen.lastIndex(of: ":") else { return nil }
            host = listen[..<colon]; port = listen[listen.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else { return nil }
        return (String(host), number)
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    func validate() throws {
        guard let (host, _) = Self.parse(listen) else { throw ValidationError("--listen \(listen) is not host:port, such as 127.0.0.1:8080 or [::1]:8080") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("give --tls-cert and --tls-key together") }
        if !Self.isLoopback(host) && tlsCert == nil && !behindProxy {
            throw ValidationError("--listen \(listen) is not a loopback address: serve it over TLS (--tls-cert, --tls-key), or say --behind-proxy when a reverse proxy in front of it terminates TLS")
        }
    }

    func run() throws {
        try runOrExit {
            let (host, port) = Self.parse(listen)!
            let userList = try users.map { try ConsoleUsers.read($0) }
            if let userList, userList.isEmpty { throw CommandFailure("\(users!) lists no user; add one with `oversight console-user add NAME --users \(users!)`") }
            let pool = try StorePool(conninfo: database.conninfo)
            var logger = Logger(label: "oversight-console")
            logger.logLevel = .warning
            let options = ConsoleServer.Options(host: host, port: port, users: userList, tls: tlsCert.map { ($0, tlsKey!) })
            let finished = DispatchSemaphore(value: 0)
            let failure = ErrorBox()
            Task {
                do {
                    let server = try await ConsoleServer(pool: pool, options: options, logger: logger)
                    try await server.run { address in
                        printError("console listening on \(address) as login \(server.login)\(options.users == nil ? "" : ", asking for a user and password")")
                    }
                } catch { failure.set(error) }
                finished.signal()
            }
            finished.wait()
            if let error = failure.get() { throw CommandFailure("the console stopped: \(error)") }
        }
    }
}

/// An error handed from the server's task to the command's thread.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: (any Error)?
    func set(_ e: any Error) { lock.lock(); error = e; lock.unlock() }
    func get() -> (any Error)? { lock.lock(); defer { lock.unlock() }; return error }
}

struct ConsoleUserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console-user",
        abstract: "Keep the users of the web console (`oversight serve --users FILE`): names and bcrypt hashes.",
        subcommands: [Add.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user, or set a user's password; the password is read from standard input.",
            discussion: """
                The file holds one `name:hash` line per user (bcrypt, cost 12), is written with mode 0600, and holds no password. On a terminal it asks for the password twice; otherwise it reads the first line of standard input.

                Example:
                  oversight console-user add editor --users console.users
                  printf '%s\\n' "$PASSWORD" | oversight console-user add ci --users console.users
                """)
        @Argument(help: "The user's name (letters, digits, . _ -).") var name: String
        @Option(help: ArgumentHelp("The users file (created if missing).", valueName: "file")) var users: String

        func validate() throws {
            guard ConsoleUsers.validName(name) else { throw ValidationError("a user name is 1 to 64 letters, digits, '.', '_' or '-'") }
        }

        func run() throws {
            try runOrExit {
                let password: String
                if isatty(0) == 1 {
                    let first = String(cString: getpass("password for \(name): "))
                    let again = String(cString: getpass("again: "))
                    guard first == again else { throw CommandFailure("the two passwords differ; nothing changed") }
                    password = first
                } else {
                    password = readLine(strippingNewline: true) ?? ""
                }
                guard password.count >= 12 else { throw CommandFailure("a password of at least 12 characters, please; nothing changed") }
                var list = FileManager.default.fileExists(atPath: users) ? try ConsoleUsers.read(users) : [:]
                let existed = list[name] != nil
                list[name] = ConsoleUsers.hash(password)
                try ConsoleUsers.write(list, to: users)
                printError("\(existed ? "changed the password of" : "added") \(name) in \(users)")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a user from the console's users file.",
            discussion: "Example:\n  oversight console-user remove editor --users console.users")
        @Argument(help: "The user's name.") var name: String
        @Option(help: ArgumentHelp("The users file.", valueName: "file")) var users: String

        func run() throws {
            try runOrExit {
                var list = try ConsoleUsers.read(users)
                guard list.removeValue(forKey: name) != nil else { throw CommandFailure("\(users) has no user \(name)") }
                try ConsoleUsers.write(list, to: users)
                printError("removed \(name) from \(users)")
            }
        }
    }
}
