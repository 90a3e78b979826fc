public import Identifiers
public import LibPQ
public import Assessment
import Foundation

/// The audit store on one PostgreSQL connection. Like the connection, it belongs to one thread.
/// It is the one way to the database: services and commands call its typed queries (by role, in
/// the files `AuditStore+Intake`, `+Results`, `+Seals`, `+Verify`, `+Leadership`, `+Access`,
/// `+Reading`, `+Queries`, `+Benchmark`) and read typed values; the connection stays inside.
public final class AuditStore {
    let connection: PGConnection
    /// The session's staging table for results exists (it lives as long as the connection).
    var stagingReady = false
    /// Whether results may be COPY'd straight into assessments (not for a role under row-level security).
    var directCopy = true

    init(connection: PGConnection) { self.connection = connection }

    /// Connects with a libpq connection string or URI (`host=a,b target_session_attrs=read-write`
    /// reaches whichever of several hosts is the primary).
    public convenience init(conninfo: String, applicationName: String) throws(PQError) {
        self.init(connection: try PGConnection(conninfo, applicationName: applicationName))
    }

    /// Whether the connection is still up (a broken one is opened again by its owner).
    public var isHealthy: Bool { connection.isHealthy }

    /// Whether a connection string carries a password (which the process list would show).
    public static func conninfoHasPassword(_ conninfo: String) -> Bool { PGConnection.conninfoHasPassword(conninfo) }

    /// Brings the schema to the newest version (a no-op when it is there already).
    @discardableResult
    public func migrate() throws -> Migrator.Report { try Migrator.migrate(connection) }

    /// Whether `error` is the database being away or busy (a broken connection, a server shutting
    /// down or failing over, a serialization failure, too many connections): the same request on
    /// a fresh connection can succeed, so callers wait it out instead of giving up.
    public static func isTransient(_ error: any Error) -> Bool { (error as? PQError)?.isTransient ?? false }

    /// What the database said when it refused a request (its message, never the SQL); nil when
    /// `error` did not come from the database.
    public static func refusal(_ error: any Error) -> String? { (error as? PQError)?.message }

    /// What a user is told of a database error: the server's words and its hint, and what to do
    /// (a missing schema, a login without the right); never the statement. Nil when `error`
    /// did not come from the database.
    public static func userMessage(_ error: any Error) -> String? { (error as? PQError)?.userMessage }

    // MARK: Criteria packs

    /// Stores a pack (idempotent, keyed by its SHA-256).
    public func register(_ pack: CriteriaPack) throws(PQError) {
        try connection.query("""
            INSERT INTO oversight.criteria_packs (sha256, pack_id, version, body)
            VALUES (\(pack.sha256), \(pack.id), \(pack.version), \(pack.canonicalText)::jsonb)
            ON CONFLICT (sha256) DO NOTHING
            """)
    }

    /// Stores an evidence pack (idempotent, keyed by its SHA-256).
    public func register(_ pack: EvidencePack) throws(PQError) {
        try connection.query("""
            INSERT INTO oversight.evidence_packs (sha256, pack_id, version, body)
            VALUES (\(pack.sha256), \(pack.id), \(pack.version), \(pack.canonicalText)::jsonb)
            ON CONFLICT (sha256) DO NOTHING
            """)
    }

    /// The evidence pack whose SHA-256 is `sha256Hex`, compiled and its hash verified; nil if
    /// the store has none.
    public func evidencePack(sha256Hex: String) throws -> EvidencePack? {
        guard let sha256 = [UInt8](hex: sha256Hex) else { return nil }
        let rows = try connection.query("SELECT body::text FROM oversight.evidence_packs WHERE sha256 = \(sha256)")
        guard rows.rowCount == 1, let body = rows.string(0, 0) else { return nil }
        let pack = try EvidencePack(json: body)
        guard pack.sha256 == sha256 else {
            throw StoreError(message: "evidence pack \(sha256Hex) does not hash to its key: the stored pack was altered")
        }
        return pack
    }

    /// Stores a criteria set and its packs (idempotent).
    public func register(_ set: CriteriaSet) throws {
        for pack in set.packs { try register(pack) }
        try connection.query("""
            INSERT INTO oversight.criteria_sets (sha256, pack_sha256s)
            VALUES (\(set.sha256), \(PGByteaArray(set.packs.map(\.sha256))))
            ON CONFLICT (sha256) DO NOTHING
            """)
    }

    /// The criteria set with this SHA-256, its packs compiled and every hash verified.
    public func criteriaSet(sha256: [UInt8]) throws -> CriteriaSet? {
        let rows = try connection.query("""
            SELECT h.sha256 FROM oversight.criteria_sets s, unnest(s.pack_sha256s) WITH ORDINALITY AS h(sha256, n)
            WHERE s.sha256 = \(sha256) ORDER BY h.n
            """)
        guard rows.rowCount > 0 else { return nil }
        var packs: [CriteriaPack] = []
        for i in 0..<rows.rowCount {
            guard let packHash = rows.bytes(i, 0), let pack = try pack(sha256: packHash) else {
                throw StoreError(message: "criteria set \(sha256.hexString) names a pack that is not stored")
            }
            packs.append(pack)
        }
        let set = CriteriaSet(packs)
        guard set.sha256 == sha256 else {
            throw StoreError(message: "criteria set \(sha256.hexString) does not hash to its key: the stored set was altered")
        }
        return set
    }

    /// The day a batch is assessed as of (fixed when it was opened); nil if there is no such batch.
    public func assessmentDate(batchID: BatchID) throws -> CalendarDate? {
        let rows = try connection.query("SELECT to_char(as_of, 'YYYY-MM-DD') FROM oversight.batches WHERE batch_id = \(batchID)::uuid")
        guard rows.rowCount == 1, let text = rows.string(0, 0) else { return nil }
        guard let date = CalendarDate(text) else { throw StoreError(message: "batch \(batchID) has an unreadable date \(text)") }
        return date
    }

    /// The pack with this SHA-256, compiled; nil if the store has none.
    public func pack(sha256: [UInt8]) throws -> CriteriaPack? {
        let rows = try connection.query("SELECT body::text FROM oversight.criteria_packs WHERE sha256 = \(sha256)")
        guard rows.rowCount == 1, let body = rows.string(0, 0) else { return nil }
        let pack = try CriteriaPack(json: body)
        guard pack.sha256 == sha256 else {
            throw StoreError(message: "criteria pack \(sha256.hexString) does not hash to its key: the stored pack was altered")
        }
        return pack
    }
}

public struct StoreError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

extension BatchID: PGEncodable {
    /// Bound as text; PostgreSQL reads it as the uuid it is compared with.
    public var pgBind: PGBind { .text(description) }
}

extension PGResult {
    /// A uuid column read as a batch id.
    func batchID(_ row: Int, _ column: Int) -> BatchID? { string(row, column).flatMap(BatchID.init) }
}
