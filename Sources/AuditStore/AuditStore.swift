public import LibPQ
public import Assessment
import Foundation

/// The audit store on one PostgreSQL connection. Like the connection, it belongs to one thread.
public final class AuditStore {
    public let connection: PGConnection
    /// The session's staging table for results exists (it lives as long as the connection).
    var stagingReady = false
    /// Whether results may be COPY'd straight into assessments (not for a role under row-level security).
    var directCopy = true

    public init(connection: PGConnection) { self.connection = connection }

    public convenience init(conninfo: String, applicationName: String) throws(PQError) {
        self.init(connection: try PGConnection(conninfo, applicationName: applicationName))
    }

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
    public func assessmentDate(batchID: String) throws -> CalendarDate? {
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
