public import LibPQ
import Crypto
import Assessment

/// Applies the SQL files of `Schemas/sql/` (embedded at build time) in version order, each once,
/// each in its own transaction, under an advisory lock so that concurrent starters do not race.
public struct Migrator {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    public static let migrations: [Migration] = EmbeddedSchemas.files.compactMap { file in
        guard let digits = file.name.split(separator: "_").first, let version = Int(digits) else { return nil }
        return Migration(version: version, name: file.name, sql: file.text)
    }.sorted { $0.version < $1.version }

    /// Advisory lock key for migrations ("ovs-migr").
    static let lockKey: Int64 = 0x6F76_732D_6D69_6772

    public struct Report: Sendable {
        public let applied: [String]
        public let current: Int
    }

    /// Brings the database to the newest schema version; a no-op when it is already there.
    @discardableResult
    public static func migrate(_ connection: PGConnection) throws -> Report {
        // Up to date: read-only, so that least-privilege roles (the coordinator's) may start.
        if try isCurrent(connection) { return Report(applied: [], current: migrations.last?.version ?? 0) }
        try connection.query("SELECT pg_advisory_lock(\(lockKey))")
        defer { _ = try? connection.query("SELECT pg_advisory_unlock(\(lockKey))") }
        try connection.runScript("""
            CREATE SCHEMA IF NOT EXISTS oversight;
            CREATE TABLE IF NOT EXISTS oversight.schema_migrations (
                version     integer PRIMARY KEY,
                name        text NOT NULL,
                sha256      bytea NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            );
            """)
        let rows = try connection.query("SELECT version, sha256 FROM oversight.schema_migrations")
        var done: [Int: [UInt8]] = [:]
        for i in 0..<rows.rowCount { done[rows.int(i, 0)!] = rows.bytes(i, 1) }
        var applied: [String] = []
        for migration in migrations {
            let sha = Array(SHA256.hash(data: Array(migration.sql.utf8)))
            if let recorded = done[migration.version] {
                if recorded != sha {
                    throw MigrationError(message: "migration \(migration.name) was changed after it was applied; add a new migration file instead of editing an applied one")
                }
                continue
            }
            try connection.transaction {
                try connection.runScript(migration.sql)
                try connection.query("INSERT INTO oversight.schema_migrations (version, name, sha256) VALUES (\(migration.version), \(migration.name), \(sha))")
            }
            applied.append(migration.name)
        }
        try syncFieldQuestions(connection)
        try storeEvidencePack(connection)
        return Report(applied: applied, current: migrations.last?.version ?? 0)
    }
}

extension Migrator {
    /// Whether every migration is applied, unchanged. Needs only SELECT on schema_migrations.
    static func isCurrent(_ connection: PGConnection) throws -> Bool {
        let exists = try connection.query("SELECT to_regclass('oversight.schema_migrations') IS NOT NULL").bool(0, 0) ?? false
        guard exists else { return false }
        let rows = try connection.query("SELECT version, sha256 FROM oversight.schema_migrations")
        var done: [Int: [UInt8]] = [:]
        for i in 0..<rows.rowCount { done[rows.int(i, 0)!] = rows.bytes(i, 1) }
        guard migrations.allSatisfy({ done[$0.version] == Array(SHA256.hash(data: Array($0.sql.utf8))) }) else { return false }
        return try connection.query("""
            SELECT EXISTS (SELECT 1 FROM oversight.field_questions WHERE schema_sha256 = \(schemaSHA256))
               AND EXISTS (SELECT 1 FROM oversight.evidence_packs WHERE sha256 = \(EvidencePack.builtIn.sha256))
            """).bool(0, 0) ?? false
    }

    /// The SHA-256 of the deployment schema this program was built with.
    static var schemaSHA256: [UInt8] { RecordSchema.deploymentSHA256 }

    /// Stores the built-in evidence pack by its SHA-256, as the inferred facts of records name it
    /// (earlier versions stay: records read with them still name them).
    static func storeEvidencePack(_ connection: PGConnection) throws {
        try AuditStore(connection: connection).register(EvidencePack.builtIn)
    }

    /// Writes the words of every field's question (the schema's `x-question`) into
    /// `oversight.field_questions`, where the views find the question a stored result names by
    /// field path; replaced whole when the schema changes.
    static func syncFieldQuestions(_ connection: PGConnection) throws {
        let questions = RecordSchema.deployment.fieldQuestions
        try connection.transaction {
            try connection.query("DELETE FROM oversight.field_questions")
            try connection.query("""
                INSERT INTO oversight.field_questions (path, question, schema_sha256)
                SELECT path, question, \(schemaSHA256) FROM unnest(\(PGTextArray(questions.map(\.path)))::text[], \(PGTextArray(questions.map(\.question)))::text[]) AS q(path, question)
                """)
        }
    }
}

public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
