import Observability
import ArgumentParser
import Glibc
import Wire
import Coordinator
import ZeroMQ
import Foundation
import Worker

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: take batches from clients and dispatch jobs to workers.",
        discussion: """
            Applies the database schema (like `oversight migrate`), resumes unfinished batches, and serves until SIGTERM or SIGINT. Start a second coordinator on the same database as a hot standby: it waits (PostgreSQL advisory lock) and takes over when the active one dies; give workers and clients both endpoints, comma-separated. An active coordinator that cannot confirm its lock for 5 s (PostgreSQL away or cut off) stops dispatching and closes its endpoints until it can, before PostgreSQL frees the lock for a standby (about 10 s); one that finds the lock taken when it reconnects exits with status 75, for systemd to start it again as a standby.

            Security: with --key, both sockets use CurveZMQ (encrypted, authenticated) and only the public keys in --worker-keys and --client-keys get in; each client key names the organisation its batches belong to. SIGHUP reloads both directories. Without keys the coordinator listens on loopback only, unless --insecure. Every completed batch is sealed: the Merkle root of its assessments, signed with the key's Ed25519 half (see `oversight audit verify`).

            Example:
              oversight keys generate coordinator --directory /etc/oversight
              oversight coordinator \\
                  --database postgresql://oversight_coordinator@db/oversight \\
                  --worker-endpoint 'tcp://*:5555' --client-endpoint 'tcp://*:5556' \\
                  --key /etc/oversight/coordinator.key_secret \\
                  --worker-keys /etc/oversight/workers \\
                      --client-keys /etc/oversight/clients
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "ZeroMQ endpoint workers connect to ('tcp://*:5555' for every interface, which needs keys or --insecure).") var workerEndpoint = "tcp://127.0.0.1:5555"
    @Option(help: "ZeroMQ endpoint clients (submit, status) connect to.") var clientEndpoint = "tcp://127.0.0.1:5556"
    @OptionGroup var security: CoordinatorSecurityOptions
    @Option(help: "Most jobs sent to a worker in one message.") var bundleSize = 256
    @Option(help: "Most waiting jobs held in memory; the rest are read back from PostgreSQL in order.") var pendingWindow = 10_000
    @Option(help: "Heartbeat interval in milliseconds.") var heartbeatInterval: Int64 = 1_000
    @Option(help: "Missed heartbeat intervals before a worker is declared dead and its jobs are re-sent.") var liveness: Int64 = 3
    @Option(help: "Attempts before a job that keeps failing is given up.") var maxAttempts = 3
    @Option(help: "Most jobs one worker may hold at once, whatever credit it asks for (a worker that vanishes sends at most this many jobs back).") var maxCredit = 1_024
    @Option(help: "Seconds a worker may hold jobs without reporting any of them done before its jobs go to other workers, as a dead worker's do; heartbeats alone do not extend it.") var leaseTimeout = 600
    @Option(help: "Largest record accepted, in bytes (larger ones are rejected by line).") var maxRecordBytes = 1024 * 1024
    @Option(help: "Longest text accepted in any one field, in bytes.") var maxFieldBytes = 64 * 1024
    @Option(help: "Most records in one batch.") var maxBatchRecords: Int64 = 10_000_000
    @OptionGroup var log: LogOptions
    @OptionGroup var metrics: MetricsOptions

    func validate() throws {
        guard (1...10_000).contains(bundleSize) else { throw ValidationError("--bundle-size must be between 1 and 10000") }
        guard pendingWindow >= bundleSize else { throw ValidationError("--pending-window must be at least --bundle-size") }
        guard heartbeatInterval >= 50 else { throw ValidationError("--heartbeat-interval must be at least 50 ms") }
        guard liveness >= 2 else { throw ValidationError("--liveness must be at least 2") }
        guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1") }
        guard maxCredit >= 1 else { throw ValidationError("--max-credit must be at least 1") }
        guard leaseTimeout >= 1 else { throw ValidationError("--lease-timeout must be at least 1 second") }
        guard (256...Envelope.maximumRecordSize).contains(maxRecordBytes) else {
            throw ValidationError("--max-record-bytes must be between 256 and \(Envelope.maximumRecordSize)")
        }
        guard maxFieldBytes >= 16 else { throw ValidationError("--max-field-bytes must be at least 16") }
        guard maxBatchRecords >= 1 else { throw ValidationError("--max-batch-records must be at least 1") }
    }

    func run() throws {
        try runOrExit {
            var configuration = CoordinatorConfiguration(conninfo: database.conninfo)
            configuration.workerEndpoint = workerEndpoint
            configuration.clientEndpoint = clientEndpoint
            configuration.bundleSize = bundleSize
            configuration.pendingWindow = pendingWindow
            configuration.heartbeatIntervalMilliseconds = heartbeatInterval
            configuration.liveness = liveness
            configuration.maxAttempts = maxAttempts
            configuration.maxCredit = maxCredit
            configuration.leaseTimeoutSeconds = leaseTimeout
            configuration.limits.record.maximumBytes = maxRecordBytes
            configuration.limits.record.maximumStringBytes = maxFieldBytes
            configuration.limits.maximumBatchRecords = maxBatchRecords
            let logger = log.logger("oversight.coordinator")
            let settings = try security.settings(endpoints: [workerEndpoint, clientEndpoint], logger: logger)
            configuration.curve = settings.curve
            configuration.sealKey = settings.sealKey
            let service = CoordinatorService(configuration: configuration, logger: logger)
            let exporter = CoordinatorMetrics()
            try metrics.start(health: ServiceHealth(alive: { service.isAlive }, notReady: { service.notReady },
                                                    refresh: { exporter.refresh(service) }), logger: logger)
            let trap = SignalTrap { _ in service.stop() }
            let reload = SignalTrap([SIGHUP]) { _ in
                do { try settings.curve?.authenticator.reload() } catch {
                    logger.error("key allowlists not reloaded; the previous ones stay in force", metadata: ["error": "\(error)"])
                }
            }
            try service.run()
            _ = (trap, reload)
        }
    }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker: score the jobs the coordinator sends and write the results to PostgreSQL.",
        discussion: """
            Start as many as you like, on as many machines as you like; each connects to the coordinator and to the database. Stops on SIGTERM or SIGINT.

            Example:
              oversight worker --coordinator tcp://coordinator.example:5555 \\
                  --key worker-7.key_secret --coordinator-key coordinator.key \\
                  --database postgresql://oversight_worker@db/oversight
            """)

    @Option(help: "The coordinator's worker endpoint; several, comma-separated, for a hot standby.") var coordinator = "tcp://127.0.0.1:5555"
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Name in logs and in the audit rows (default: host name and process id).") var name: String?
    @Option(help: "Jobs this worker may hold at once (bundles being received, scored and written at the same time).") var credit: UInt32 = 1024
    @Option(help: "Heartbeat interval in milliseconds.") var heartbeatInterval: Int64 = 1_000
    @Option(help: "Missed heartbeat intervals before the coordinator is presumed gone and the worker reconnects.") var liveness: Int64 = 3
    @OptionGroup var security: PeerSecurityOptions
    @OptionGroup var log: LogOptions
    @OptionGroup var metrics: MetricsOptions

    func validate() throws {
        guard credit >= 1 else { throw ValidationError("--credit must be at least 1") }
        guard heartbeatInterval >= 50 else { throw ValidationError("--heartbeat-interval must be at least 50 ms") }
        guard liveness >= 2 else { throw ValidationError("--liveness must be at least 2") }
        do { _ = try Endpoint.normalised(coordinator, option: "--coordinator") } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        try runOrExit {
            let workerName = name ?? "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
            let coordinator = try Endpoint.normalised(coordinator, option: "--coordinator")
            var configuration = WorkerConfiguration(coordinatorEndpoint: coordinator, conninfo: database.conninfo, name: workerName)
            configuration.credit = credit
            configuration.heartbeatIntervalMilliseconds = heartbeatInterval
            configuration.liveness = liveness
            configuration.curve = try security.curve(for: coordinator)
            let logger = log.logger("oversight.worker")
            let service = WorkerService(configuration: configuration, logger: logger)
            try metrics.start(health: ServiceHealth(alive: { service.isAlive }, notReady: { service.notReady }), logger: logger)
            let trap = SignalTrap { _ in service.stop() }
            try service.run()
            _ = trap
        }
    }
}
