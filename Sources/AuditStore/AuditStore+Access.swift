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

    /// The program's group roles: cluster-wide, NOLOGIN; logins are made members of them.
    public static let groupRoles = ["oversight_coordinator", "oversight_worker", "oversight_reader", "oversight_scaler"]

    /// Creates the group roles that do not exist yet; returns those it created. A dump of one
    /// database (`pg_dump`) carries no roles, and its policies and grants name these: restoring
    /// it into a fresh cluster needs them first (`oversight migrate --roles-only`).
    public func createGroupRoles() throws -> [String] {
        var created: [String] = []
        for role in Self.groupRoles where try connection.query("SELECT 1 FROM pg_roles WHERE rolname = \(role)").rowCount == 0 {
            // An identifier cannot be a bound parameter; these are the constants above.
            try connection.runScript("CREATE ROLE \(role) NOLOGIN")
            created.append(role)
        }
        return created
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
