import LibPQ

/// Leadership: one coordinator per database is active. It holds a session-level advisory lock
/// ("ovs-lead"); a standby polls for it, and the lock goes with the session when the active
/// coordinator's connection ends (its process died, or PostgreSQL restarted or failed over).
extension AuditStore {
    static let leadershipKey: Int64 = 0x6F76_732D_6C65_6164

    /// How the server watches a session's link (`tcp_keepalives_*`, `tcp_user_timeout`).
    public struct SessionLink: Sendable {
        public var keepalivesIdle: Int, keepalivesInterval: Int, keepalivesCount: Int, userTimeoutMilliseconds: Int
        public init(keepalivesIdle: Int, keepalivesInterval: Int, keepalivesCount: Int, userTimeoutMilliseconds: Int) {
            self.keepalivesIdle = keepalivesIdle
            self.keepalivesInterval = keepalivesInterval
            self.keepalivesCount = keepalivesCount
            self.userTimeoutMilliseconds = userTimeoutMilliseconds
        }
    }

    /// Takes the leadership lock for this connection's session if no other session holds it.
    /// True if this session holds it now (taking it again is harmless).
    ///
    /// The session is first told to watch its link (`link`: the server's side of what libpq
    /// does on ours): a coordinator cut off from PostgreSQL loses its session, and the lock,
    /// within seconds, instead of keeping a standby out for the kernel's TCP timeouts (hours
    /// for an idle link). On a Unix socket they do nothing.
    public func tryTakeLeadership(link: SessionLink) throws -> Bool {
        try connection.query("""
            SELECT pg_try_advisory_lock(\(Self.leadershipKey))
            FROM (SELECT set_config('tcp_keepalives_idle', \(String(link.keepalivesIdle)), false),
                         set_config('tcp_keepalives_interval', \(String(link.keepalivesInterval)), false),
                         set_config('tcp_keepalives_count', \(String(link.keepalivesCount)), false),
                         set_config('tcp_user_timeout', \(String(link.userTimeoutMilliseconds)), false)) AS link
            """).bool(0, 0) ?? false
    }

    /// Whether this session still holds the leadership lock. A session keeps it for as long as
    /// it lives; asking is how the active coordinator finds out that its session ended (the
    /// server restarted or failed over) while it had nothing else to ask the database.
    public func holdsLeadership() throws -> Bool {
        try connection.query("""
            SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
                           AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = \(Self.leadershipKey))
            """).bool(0, 0) ?? false
    }
}
