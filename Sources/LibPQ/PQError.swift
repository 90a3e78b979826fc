/// A PostgreSQL or libpq error: the operation, and what the server said (SQLSTATE, message,
/// detail, hint), so callers can branch on `sqlState` and users read what to do.
public struct PQError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// Could not connect, or the connection broke: retry later.
        case connection
        /// The server rejected the statement.
        case server
        /// A COPY or protocol step failed.
        case protocolFailure = "protocol"
    }

    public let kind: Kind
    public let operation: String
    /// Five-character SQLSTATE (e.g. `23505` unique_violation), when the server sent one.
    public let sqlState: String?
    public let message: String
    public let detail: String?
    public let hint: String?

    public init(kind: Kind, operation: String, sqlState: String? = nil, message: String, detail: String? = nil, hint: String? = nil) {
        self.kind = kind
        self.operation = operation
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    public var description: String {
        var text = "\(operation): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += "; detail: \(detail)" }
        if let hint { text += "; hint: \(hint)" }
        return text
    }

    /// What a user is told: the server's words and its hint, never the statement (which the
    /// description names for logs).
    public var userMessage: String {
        switch sqlState {
        case "42P01", "3F000":
            return "this database has no Oversight schema (or an older one): run `oversight migrate` with the same --database"
        case "42501":
            return "this login may not do that here: \(message) (a reader login sees its organisation's views only)"
        default:
            var text = kind == .connection ? "cannot reach PostgreSQL: \(message)" : "PostgreSQL refused: \(message)"
            if let hint { text += " (\(hint))" }
            return text
        }
    }

    /// True when retrying on a new connection may succeed (connection loss, server shutdown,
    /// serialization failure, deadlock).
    public var isTransient: Bool {
        if kind == .connection { return true }
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || sqlState.hasPrefix("57P") || sqlState == "40001" || sqlState == "40P01" || sqlState == "53300"
            // A server that is (or became) a standby: after a failover, reconnect to the primary.
            || sqlState == "25006"
    }
}
