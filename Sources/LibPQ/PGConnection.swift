import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection. Not thread-safe: one thread owns it (see DESIGN.md, Concurrency).
///
/// Connection settings follow libpq exactly: a `key=value` string or a `postgresql://` URI,
/// and for anything they leave out, `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGPASSFILE`,
/// `PGSERVICE`, `PGSSLMODE`… as psql uses them. An empty string means "environment only".
public final class PGConnection {
    let handle: OpaquePointer
    public let applicationName: String

    public init(_ conninfo: String, applicationName: String = "oversight") throws(PQError) {
        self.applicationName = applicationName
        // Defaults first: libpq keeps the last value of a repeated key word, so the conninfo's
        // own settings (expanded from `dbname`) win over these.
        let defaults = Self.networkDefaults
        let keywords = defaults.map(\.0) + ["dbname", "fallback_application_name"]
        let values = defaults.map(\.1) + [conninfo, applicationName]
        let connection: OpaquePointer? = withCStrings(keywords) { k in
            withCStrings(values) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let connection else {
            throw PQError(kind: .connection, operation: "connect", message: "libpq could not allocate a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.trimmed(String(cString: PQerrorMessage(connection)))
            PQfinish(connection)
            throw PQError(kind: .connection, operation: "connect to PostgreSQL", message: message,
                          hint: "check the --database URL or OVERSIGHT_DATABASE_URL, and PGHOST/PGPORT/PGUSER; is the server running?")
        }
        handle = connection
        // Server notices (e.g. "already exists, skipping") are not errors; keep them off stderr.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    deinit { PQfinish(handle) }

    /// How soon a connection gives up on a server that vanished without closing it (a partition,
    /// a powered-off host), where the conninfo does not say otherwise: without these, a session
    /// waits for the kernel's TCP timeouts (about two hours idle, fifteen minutes with data
    /// unacknowledged), and a multi-host conninfo never moves on to the new primary.
    /// - `connect_timeout` 10 s per host tried;
    /// - TCP keepalives after 10 s idle, every 3 s, 3 unanswered: a dead idle link is found in ~19 s;
    /// - `tcp_user_timeout` 15 s: data unacknowledged for 15 s ends the connection.
    public static let networkDefaults: [(String, String)] = [
        ("connect_timeout", "10"),
        ("keepalives", "1"),
        ("keepalives_idle", "10"),
        ("keepalives_interval", "3"),
        ("keepalives_count", "3"),
        ("tcp_user_timeout", "15000"),
    ]

    public var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK }
    public var serverVersion: Int { Int(PQserverVersion(handle)) }

    /// Runs one statement with bound parameters.
    @discardableResult
    public func query(_ query: PGQuery) throws(PQError) -> PGResult {
        let result = execParams(query.sql, query.binds)
        return try check(result, operation: Self.summary(of: query.sql))
    }

    /// Runs a trusted multi-statement script (migrations from `Schemas/`); no parameters.
    public func runScript(_ sql: String) throws(PQError) {
        let result = PQexec(handle, sql)
        _ = try check(result, operation: "run SQL script")
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try query("BEGIN")
        do {
            let value = try body()
            try query("COMMIT")
            return value
        } catch {
            if PQtransactionStatus(handle) != PQTRANS_UNKNOWN { _ = try? query("ROLLBACK") }
            throw error
        }
    }

    /// Streams rows into `COPY … FROM STDIN` (text format); returns the number of rows copied.
    @discardableResult
    public func copyIn(_ statement: PGQuery, _ body: (inout PGCopyWriter) throws -> Void) throws -> Int {
        try startCopy(statement)
        var writer = PGCopyWriter(connection: self)
        do {
            try body(&writer)
            try writer.flush()
        } catch {
            abortCopy()
            throw error
        }
        return try endCopy(statement)
    }

    @discardableResult
    /// COPY in binary format: `statement` ends in `FROM STDIN (FORMAT binary)` and names
    /// `fields` columns, which every row fills in order.
    public func copyInBinary(_ statement: PGQuery, fields: Int, _ body: (inout PGBinaryCopyWriter) throws -> Void) throws -> Int {
        try startCopy(statement)
        var writer = PGBinaryCopyWriter(connection: self, fields: fields)
        do {
            try body(&writer)
            try writer.finish()
        } catch {
            abortCopy()
            throw error
        }
        return try endCopy(statement)
    }

    private func startCopy(_ statement: PGQuery) throws {
        precondition(statement.binds.isEmpty, "COPY statements take no parameters")
        let start = PQexec(handle, statement.sql)
        guard let start, PQresultStatus(start) == PGRES_COPY_IN else {
            _ = try check(start, operation: Self.summary(of: statement.sql))
            throw PQError(kind: .protocolFailure, operation: "COPY", message: "server did not enter COPY IN mode")
        }
        PQclear(start)
    }

    private func abortCopy() {
        PQputCopyEnd(handle, "aborted by client")
        while let r = PQgetResult(handle) { PQclear(r) }
    }

    private func endCopy(_ statement: PGQuery) throws -> Int {
        guard PQputCopyEnd(handle, nil) == 1 else { throw connectionError("COPY end") }
        var rows = 0
        var failure: PQError?
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                rows = Int(String(cString: PQcmdTuples(result))) ?? 0
                PQclear(result)
            } else if failure == nil {
                do { _ = try check(result, operation: Self.summary(of: statement.sql)) } catch { failure = error }
            } else {
                PQclear(result)
            }
        }
        if let failure { throw failure }
        return rows
    }

    func putCopyData(_ bytes: [UInt8]) throws(PQError) {
        let rc = bytes.withUnsafeBytes { raw in
            PQputCopyData(handle, raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(raw.count))
        }
        guard rc == 1 else { throw connectionError("COPY data") }
    }

    // MARK: Helpers

    private func execParams(_ sql: String, _ binds: [PGBind]) -> OpaquePointer? {
        withParameters(binds) { count, values, lengths, formats in PQexecParams(handle, sql, count, nil, values, lengths, formats, 0) }
    }

    /// Sends a statement without waiting for its result, so that the server works on it while
    /// the caller works on the last one; `receive` collects it. One statement at a time.
    public func send(_ query: PGQuery) throws(PQError) {
        let sent = withParameters(query.binds) { count, values, lengths, formats in
            PQsendQueryParams(handle, query.sql, count, nil, values, lengths, formats, 0)
        }
        guard sent == 1 else { throw connectionError(Self.summary(of: query.sql)) }
    }

    /// The result of the statement `send` sent, waiting for it.
    public func receive(_ query: PGQuery) throws(PQError) -> PGResult {
        let first = PQgetResult(handle)
        while let more = PQgetResult(handle) { PQclear(more) }
        return try check(first, operation: Self.summary(of: query.sql))
    }

    private func withParameters<T>(_ binds: [PGBind],
                                   _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> T) -> T {
        if binds.isEmpty { return body(0, nil, nil, nil) }
        var storage: [[UInt8]] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        var isNull: [Bool] = []
        for bind in binds {
            switch bind {
            case .null: storage.append([]); lengths.append(0); formats.append(0); isNull.append(true)
            case .text(let s):
                var bytes = Array(s.utf8); bytes.append(0)
                storage.append(bytes); lengths.append(Int32(bytes.count - 1)); formats.append(0); isNull.append(false)
            case .binary(let b):
                storage.append(b.isEmpty ? [0] : b); lengths.append(Int32(b.count)); formats.append(1); isNull.append(false)
            }
        }
        return withBytePointers(storage, isNull: isNull) { pointers in
            lengths.withUnsafeBufferPointer { l in formats.withUnsafeBufferPointer { f in body(Int32(binds.count), pointers, l.baseAddress, f.baseAddress) } }
        }
    }

    private func check(_ result: OpaquePointer?, operation: String) throws(PQError) -> PGResult {
        guard let result else { throw connectionError(operation) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_COPY_IN:
            return PGResult(result)
        default:
            func field(_ code: Character) -> String? {
                guard let p = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
                return String(cString: p)
            }
            let sqlState = field("C")
            let message = field("M") ?? Self.trimmed(String(cString: PQresultErrorMessage(result)))
            let error = PQError(kind: PQstatus(handle) == CONNECTION_OK ? .server : .connection,
                                operation: operation, sqlState: sqlState, message: message,
                                detail: field("D"), hint: field("H"))
            PQclear(result)
            throw error
        }
    }

    func connectionError(_ operation: String) -> PQError {
        PQError(kind: .connection, operation: operation, message: Self.trimmed(String(cString: PQerrorMessage(handle))))
    }

    static func trimmed(_ s: String) -> String {
        var s = Substring(s)
        while let last = s.last, last.isWhitespace { s = s.dropLast() }
        return String(s)
    }

    /// The first words of a statement, for error messages (never its parameters).
    static func summary(of sql: String) -> String {
        let words = sql.split(whereSeparator: { $0.isWhitespace }).prefix(4).joined(separator: " ")
        return words.count > 60 ? String(words.prefix(60)) + "…" : words
    }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let duplicated = strings.map { strdup($0) }
    defer { duplicated.forEach { free($0) } }
    var pointers: [UnsafePointer<CChar>?] = duplicated.map { UnsafePointer($0) }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

private func withBytePointers<R>(_ storage: [[UInt8]], isNull: [Bool], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafePointer<CChar>?] = []
    var allocations: [UnsafeMutablePointer<UInt8>] = []
    defer { allocations.forEach { $0.deallocate() } }
    for (bytes, null) in zip(storage, isNull) {
        if null { pointers.append(nil); continue }
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bytes.count, 1))
        p.initialize(from: bytes, count: bytes.count)
        allocations.append(p)
        pointers.append(UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))
    }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
