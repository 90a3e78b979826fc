import LibPQ

/// Leadership: one coordinator per database is active. It holds a session-level advisory lock
/// ("ovs-lead"); a standby polls for it, and the lock goes with the session when the active
/// coordinator's connection ends (its process died, or PostgreSQL restarted or failed over).
extension AuditStore {
    static let leadershipKey: Int64 = 0x6F76_732D_6C65_6164

    /// Takes the leadership lock for this connection's session if no other session holds it.
    /// True if this session holds it now (taking it again is harmless).
    public func tryTakeLeadership() throws -> Bool {
        try connection.query("SELECT pg_try_advisory_lock(\(Self.leadershipKey))").bool(0, 0) ?? false
    }
}
