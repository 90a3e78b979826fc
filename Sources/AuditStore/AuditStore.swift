public import LibPQ
public import Assessment
import Foundation

/// The audit store on one PostgreSQL connection. Like the connection, it belongs to one thread.
public final class AuditStore {
    public let connection: PGConnection
    /// The session's staging table for results exists (it lives as long as the connection).
    var stagingReady = false

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
