import LibPQ

/// Logins and databases: what an administrator sets up, through the migration-defined functions
/// (bound parameters only; a password goes as a SCRAM verifier computed here, never as text).
extension AuditStore {
    /// Creates or updates a read-only login that sees the batches of `organisation` only.
    public func grantReader(role: String, organisation: String, password: String?) throws {
        let verifier = try password.map { password throws(PQError) in try connection.encryptPassword(password, role: role) }
        try connection.query("SELECT oversight.grant_reader(\(role), \(organisation), \(verifier))")
    }

    /// Creates or updates a login for a coordinator or workers (`service`), with only what it needs.
    public func grantService(role: String, service: String, password: String?) throws {
        let verifier = try password.map { password throws(PQError) in try connection.encryptPassword(password, role: role) }
        try connection.query("SELECT oversight.grant_service(\(role), \(service), \(verifier))")
    }

    /// Creates the database `oversight` on the server that `adminConninfo` reaches (connected to
    /// its maintenance database), dropping an existing one first when `recreate` is set, and
    /// leaving an existing one alone otherwise.
    public static func createDatabase(adminConninfo: String, recreate: Bool) throws {
        let admin = try PGConnection(adminConninfo, applicationName: "oversight-local-db")
        if recreate {
            try admin.query("DROP DATABASE IF EXISTS oversight WITH (FORCE)")
        } else if try admin.query("SELECT 1 FROM pg_database WHERE datname = 'oversight'").rowCount == 1 {
            return
        }
        try admin.query("CREATE DATABASE oversight")
    }
}
