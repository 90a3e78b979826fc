import ArgumentParser
import Coordinator
import Foundation
import Logging
import Observability
import Prometheus
import Wire

/// This build's version, in `oversight --version` and `oversight_build_info`.
enum OversightVersion {
    static let string = "0.1.0"
}

/// `--metrics HOST:PORT`: Prometheus metrics, `/healthz` and `/readyz` on a listener of the
/// service's own. Off unless given.
struct MetricsOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Serve Prometheus metrics at http://HOST:PORT/metrics, and /healthz and /readyz, e.g. 127.0.0.1:9464 (off unless given).",
        discussion: "Bind it where only your Prometheus reaches it: the numbers are counts and states, never record text or organisation names."))
    var metrics: String?

    func validate() throws {
        if let metrics, MetricsEndpoint.parse(metrics) == nil {
            throw ValidationError("--metrics \"\(metrics)\" is not HOST:PORT; give, for example, 127.0.0.1:9464")
        }
    }

    /// Starts the listener, if asked for; logs where it listens.
    func start(health: ServiceHealth, logger: Logger) throws {
        guard let metrics, let (host, port) = MetricsEndpoint.parse(metrics) else { return }
        let endpoint = MetricsEndpoint(host: host, port: port, version: OversightVersion.string, health: health)
        var quiet = logger
        quiet.logLevel = .warning
        let address = try endpoint.start(logger: quiet)
        logger.info("metrics listening", metadata: ["address": "\(address)/metrics"])
    }
}

/// The coordinator's metrics: its loop's snapshot, turned into Prometheus series on each scrape.
final class CoordinatorMetrics: @unchecked Sendable {
    private let registry = MetricsEndpoint.shared
    private let lock = NSLock()
    /// Totals already added to each counter (a snapshot carries totals; counters take increments).
    private var exported: [String: Int64] = [:]
    private var batchStates: Set<String> = ["receiving", "running"]

    func refresh(_ service: CoordinatorService) {
        let snapshot = service.snapshot()
        lock.withLock {
            gauge("oversight_coordinator_leader", "1 while this coordinator holds the leadership lock and dispatches; 0 as a standby or while it holds.",
                  snapshot.map { $0.leader ? 1 : 0 } ?? 0)
            guard let snapshot else { return }
            let outcomes: [(String, Int64)] = [("dispatched", snapshot.jobs.dispatched), ("committed", snapshot.jobs.committed),
                                               ("failed", snapshot.jobs.failed), ("retried", snapshot.jobs.retried),
                                               ("dead_lettered", snapshot.jobs.deadLettered)]
            for (outcome, total) in outcomes {
                counter("oversight_jobs_total", [("outcome", outcome)], "Jobs by outcome since this coordinator began leading: sent to workers (dispatched; retried: sent again after a failure), counted done (committed), failed attempts (failed), given up (dead_lettered).", total)
            }
            for (outcome, total) in [("accepted", snapshot.intake.accepted), ("rejected", snapshot.intake.rejected)] {
                counter("oversight_intake_records_total", [("outcome", outcome)], "Submitted records taken in as jobs (accepted) or refused with a reason (rejected), since this coordinator began leading.", total)
            }
            gauge("oversight_jobs_pending", "Jobs of unfinished batches neither done nor leased to a worker.", Double(snapshot.pending))
            gauge("oversight_oldest_pending_job_age_seconds", "Seconds since the batch of the oldest pending job was taken up by this coordinator (opened, resumed or retried): no pending job is older. 0 with none pending.",
                  snapshot.oldestPendingAgeSeconds)
            gauge("oversight_jobs_leased", "Jobs leased to workers and not yet reported done.", Double(snapshot.leased))
            gauge("oversight_workers_connected", "Workers connected to this coordinator.", Double(snapshot.workers))
            gauge("oversight_worker_credit", "Jobs the connected workers may hold in all (their credit, as granted).", Double(snapshot.credit))
            batchStates.formUnion(snapshot.batches.keys)
            for state in batchStates.sorted() {
                registry.makeGauge(name: "oversight_batches", labels: [("state", state)], help: "Unfinished batches by state.")
                    .set(to: Double(snapshot.batches[state] ?? 0))
            }
            for kind in CoordinatorService.countedKinds where snapshot.violations[kind] == nil {
                counter("oversight_protocol_violations_total", [("kind", kind)], "Protocol violations and dropped messages, by kind (as `oversight status --counters`).", 0)
            }
            for (kind, total) in snapshot.violations {
                counter("oversight_protocol_violations_total", [("kind", kind)], "Protocol violations and dropped messages, by kind (as `oversight status --counters`).", Int64(total))
            }
        }
    }

    private func gauge(_ name: String, _ help: String, _ value: Double) {
        registry.makeGauge(name: name, help: help).set(to: value)
    }

    private func counter(_ name: String, _ labels: [(String, String)], _ help: String, _ total: Int64) {
        let key = name + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        let delta = total - exported[key, default: 0]
        let counter = registry.makeCounter(name: name, labels: labels, help: help)
        if delta > 0 {
            counter.increment(by: delta)
            exported[key] = total
        }
    }
}
