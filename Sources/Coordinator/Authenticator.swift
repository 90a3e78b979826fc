import Assessment
import Foundation
public import Logging
public import ZeroMQ

/// Decides who may connect to the coordinator's sockets: the ZAP handler's policy. Worker keys
/// and client keys come from two directories and are reloaded on request (SIGHUP) without
/// dropping anyone already connected.
public final class Authenticator: @unchecked Sendable {
    public static let workerDomain = "oversight-workers"
    public static let clientDomain = "oversight-clients"

    let workerDirectory: String
    let clientDirectory: String
    let logger: Logger
    private let lock = NSLock()
    private var workers = KeyAllowlist()
    private var clients = KeyAllowlist()
    private var refusals = 0

    /// Loads both directories; throws when one cannot be read at all.
    public init(workerDirectory: String, clientDirectory: String, logger: Logger) throws {
        self.workerDirectory = workerDirectory
        self.clientDirectory = clientDirectory
        self.logger = logger
        try reload()
    }

    /// Reads both directories again. On failure the previous lists stay in force.
    public func reload() throws {
        let w = try KeyAllowlist(directory: workerDirectory, requireOrganisation: false)
        let c = try KeyAllowlist(directory: clientDirectory, requireOrganisation: true)
        for problem in w.problems + c.problems { logger.warning("key allowlist: \(problem)") }
        lock.withLock { workers = w; clients = c }
        logger.info("key allowlists loaded", metadata: ["worker_keys": "\(w.entries.count)", "client_keys": "\(c.entries.count)"])
    }

    public func authorize(_ request: ZAPRequest) -> ZAPDecision {
        guard let key = request.curvePublicKey else {
            return refuse(request, fingerprint: "none", "CURVE is required")
        }
        let decision: ZAPDecision? = lock.withLock {
            switch request.domain {
            case Self.workerDomain:
                return workers.entries[key].map { .allow(userID: "worker:" + $0.name) }
            case Self.clientDomain:
                return clients.entries[key].flatMap { $0.organisation }.map { .allow(userID: $0) }
            default:
                return nil
            }
        }
        return decision ?? refuse(request, fingerprint: keyFingerprint(key), "key not in the allowlist")
    }

    private func refuse(_ request: ZAPRequest, fingerprint: String, _ reason: String) -> ZAPDecision {
        let n = lock.withLock { refusals += 1; return refusals }
        // Bounded: the first ten, then every power of two.
        if n <= 10 || n & (n - 1) == 0 {
            let side = request.domain == Self.workerDomain ? "worker" : "client"
            logger.warning("refused a \(side): \(reason)", metadata: [
                "fingerprint": "\(fingerprint)", "address": "\(request.address)", "refusals": "\(n)"])
        }
        return .deny(reason: reason)
    }
}
