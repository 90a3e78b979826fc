import AuditStore
import Logging
import ZeroMQ
import Foundation
#if canImport(Glibc)
import Glibc
import Observability
#endif

/// The thread that holds this coordinator's leadership: a PostgreSQL session of its own that
/// takes the advisory lock (a standby waits for it here) and then confirms, every
/// `checkInterval`, that it still holds it, posting `.leadershipConfirmed` each time.
///
/// The session does nothing else, so a confirmation never waits behind the store thread's
/// work. The loop thread counts the time since the last one: past `Deadlines.hold` it stops
/// dispatching and unbinds its endpoints (workers and clients move to whichever coordinator
/// answers), well before PostgreSQL, told by this session to watch its link
/// (`Deadlines.serverRelease`), ends the session and frees the lock for a standby.
final class LeadershipThread: @unchecked Sendable {
    /// The deadlines of leadership, in seconds. They must stay in this order: a leader cut off
    /// from PostgreSQL stops dispatching (`hold`) before the server can free its lock
    /// (`serverRelease`), so two coordinators never dispatch at once.
    enum Deadlines {
        /// How often the leader asks its session whether it still holds the lock.
        static let checkInterval = 1.0
        /// Seconds without a confirmation after which the leader stops dispatching.
        static let hold: Int64 = 5
        /// The server's side of the session's link: keepalives after 5 s idle, every 1 s,
        /// 5 unanswered; or data unacknowledged for 10 s. Either way PostgreSQL ends a session
        /// whose coordinator is cut off about 10 s after it last heard from it.
        static let serverKeepalivesIdle = 5, serverKeepalivesInterval = 1, serverKeepalivesCount = 5
        static let serverUserTimeoutMilliseconds = 10_000
        static var serverRelease: Int64 { Int64(serverKeepalivesIdle + serverKeepalivesInterval * serverKeepalivesCount) }
    }

    private let conninfo: String
    private let replies: Mailbox<StoreReply>
    private let logger: Logger
    private var store: AuditStore?
    /// Closed to end `run()`.
    let stopping = Mailbox<Bool>()
    private let contactLock = NSLock()
    private var lastContact = ContinuousClock.now

    /// Seconds since PostgreSQL last answered this thread (a standby asks 4 times a second,
    /// a leader once): what `/readyz` reads, leader or not.
    var secondsSinceContact: Double {
        let d = ContinuousClock.now - contactLock.withLock { lastContact }
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
    private func answered() { contactLock.withLock { lastContact = ContinuousClock.now } }

    init(conninfo: String, replies: Mailbox<StoreReply>, logger: Logger) {
        self.conninfo = conninfo
        self.replies = replies
        self.logger = logger
    }

    /// Waits until this coordinator holds the leadership lock (a standby waits here while another
    /// coordinator is active), or until `shouldStop` says to give up. Returns false if it gave up.
    ///
    /// A standby rides through database outages and failovers while it waits: its session (on
    /// the old primary) ends with them, and it connects again, to whichever server the conninfo
    /// finds writable, and goes on asking there, where the lock is free until a coordinator
    /// reconnects and takes it.
    func becomeActive(shouldStop: () -> Bool) throws -> Bool {
        var store = try session()
        var announced = false
        while true {
            let held: Bool
            do { held = try store.tryTakeLeadership(link: Self.serverLink); answered() } catch {
                guard announced, AuditStore.isTransient(error) else { throw error }
                logger.warning("standby: PostgreSQL unavailable, reconnecting", metadata: ["error": "\(error)"])
                guard let fresh = reconnect(shouldStop: shouldStop) else { return false }
                store = fresh
                continue
            }
            if held { break }
            if !announced {
                logger.notice("standby: another coordinator is active on this database; waiting to take over")
                // Up, as a standby: ready for systemd (leadership is not readiness).
                SystemdNotify.ready(status: "standby: waiting for the active coordinator's lock")
                announced = true
            }
            if shouldStop() { return false }
            Thread.sleep(forTimeInterval: 0.25)
        }
        if announced { logger.notice("the active coordinator is gone: taking over") }
        self.store = store
        return true
    }

    /// Confirms leadership every `checkInterval` until stopped. A session that ended (an outage,
    /// a failover, a partition libpq noticed) is replaced: the new session takes the lock again,
    /// or, if another coordinator took it meanwhile, this one steps down (exit 75: a supervisor
    /// starts it again, as a standby).
    func run() {
        while true {
            _ = stopping.take(timeout: Deadlines.checkInterval)
            if stopping.isClosed { return }
            do {
                guard let store, store.isHealthy else { throw StoreError(message: "no session") }
                guard try store.holdsLeadership() else {
                    logger.critical("this coordinator's database session no longer holds the leadership lock; stepping down (restart this one to make it a standby)")
                    exit(75)
                }
                answered()
                replies.post(.leadershipConfirmed)
            } catch {
                logger.warning("cannot confirm leadership; reconnecting to PostgreSQL", metadata: ["error": "\(error)"])
                store = nil
                guard let fresh = reconnect(shouldStop: { stopping.isClosed }) else { return }
                let held: Bool
                do { held = try fresh.tryTakeLeadership(link: Self.serverLink) } catch {
                    logger.warning("cannot take the leadership lock again yet", metadata: ["error": "\(error)"])
                    continue
                }
                guard held else {
                    logger.critical("another coordinator became active while this one could not reach the database; stepping down (restart this one to make it a standby)")
                    exit(75)
                }
                store = fresh
                answered()
                logger.info("leadership lock taken again on a new database session")
                replies.post(.leadershipConfirmed)
            }
        }
    }

    /// Ends `run()` at its next look (within `checkInterval`).
    func stop() { stopping.close() }

    private static var serverLink: AuditStore.SessionLink {
        .init(keepalivesIdle: Deadlines.serverKeepalivesIdle, keepalivesInterval: Deadlines.serverKeepalivesInterval,
              keepalivesCount: Deadlines.serverKeepalivesCount, userTimeoutMilliseconds: Deadlines.serverUserTimeoutMilliseconds)
    }

    private func session() throws -> AuditStore {
        try AuditStore(conninfo: conninfo, applicationName: "oversight-coordinator")
    }

    /// A new session, with a short backoff (leadership is decided in seconds); nil if told to
    /// stop first.
    private func reconnect(shouldStop: () -> Bool) -> AuditStore? {
        var delay = 0.1
        while !shouldStop() {
            if let fresh = try? session() { return fresh }
            Thread.sleep(forTimeInterval: delay * Double.random(in: 0.5...1.5))
            delay = min(delay * 2, 1)
        }
        return nil
    }
}
