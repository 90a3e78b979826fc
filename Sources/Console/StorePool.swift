public import AuditStore
import Dispatch
import Synchronization

/// A few audit-store connections for the console, each on a serial queue of its own, so that
/// libpq's blocking calls never run on the server's event loops and a connection serves one
/// request at a time. A connection that breaks is opened again on its next use.
public final class StorePool: Sendable {
    final class Slot: @unchecked Sendable {
        let queue: DispatchQueue
        /// Touched only on `queue`.
        var store: AuditStore?
        init(_ n: Int) { queue = DispatchQueue(label: "oversight.console.store.\(n)") }
    }

    private let slots: [Slot]
    private let next = Atomic<Int>(0)
    private let conninfo: String

    /// Opens one connection now, so that a wrong URL or password fails at start.
    public init(conninfo: String, size: Int = 4) throws {
        self.conninfo = conninfo
        slots = (0..<max(1, size)).map(Slot.init)
        slots[0].store = try AuditStore.reading(conninfo: conninfo, applicationName: "oversight-console")
    }

    /// Runs `body` with a store on its connection's queue.
    public func with<T: Sendable>(_ body: @escaping @Sendable (AuditStore) throws -> T) async throws -> T {
        let slot = slots[next.add(1, ordering: .relaxed).oldValue % slots.count]
        let conninfo = self.conninfo
        return try await withCheckedThrowingContinuation { continuation in
            slot.queue.async {
                do {
                    if slot.store == nil { slot.store = try AuditStore.reading(conninfo: conninfo, applicationName: "oversight-console") }
                    continuation.resume(returning: try body(slot.store!))
                } catch {
                    if let store = slot.store, !store.isHealthy { slot.store = nil }
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}
