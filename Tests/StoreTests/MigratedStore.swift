import Assessment
@testable import AuditStore
import TestSupport

/// Each test its own world: a fresh database, migrated, with the built-in packs registered.
func migratedStore(_ label: String, packs: CriteriaSet = .builtIn) throws -> AuditStore {
    let store = try AuditStore(conninfo: try TestDatabase.create(label), applicationName: "tests")
    try Migrator.migrate(store.connection)
    try store.register(packs)
    return store
}

/// The day the store tests' assessments are made as of.
let testDate = CalendarDate("2026-12-01")!
