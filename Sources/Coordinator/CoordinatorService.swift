public import Logging
public import Assessment
public import ZeroMQ
import Identifiers
import AuditStore
import Wire
import Foundation
import Observability
import Metrics

/// How a coordinator runs.
public struct CoordinatorConfiguration: Sendable {
    public var conninfo: String
    public var workerEndpoint = "tcp://127.0.0.1:5555"
    public var clientEndpoint = "tcp://127.0.0.1:5556"
    public var bundleSize = 256
    public var pendingWindow = 10_000
    public var heartbeatIntervalMilliseconds: Int64 = 1_000
    public var liveness: Int64 = 3
    public var maxAttempts = 3
    /// Most jobs one worker may hold, whatever credit it claims.
    public var maxCredit = 1_024
    /// Seconds a worker may hold jobs without reporting any done before its leases expire.
    public var leaseTimeoutSeconds = 600
    /// Chunks a client may have in flight unacknowledged.
    public var clientWindow: UInt32 = 4
    /// CURVE: the coordinator's key pair and who may connect. Nil: plain TCP (loopback only,
    /// unless the operator said --insecure).
    public var curve: CurveServer?
    /// Signs the seal of every completed batch.
    public var sealKey = SealKey()
    public var limits = IntakeLimits()

    public init(conninfo: String) { self.conninfo = conninfo }
}

/// The coordinator's side of CurveZMQ.
public struct CurveServer: Sendable {
    public let keys: CurveKeyPair
    public let authenticator: Authenticator
    public init(keys: CurveKeyPair, authenticator: Authenticator) {
        self.keys = keys
        self.authenticator = authenticator
    }
}

/// The coordinator: takes batches from clients, dispatches jobs to workers, tracks progress.
///
/// `run()` blocks the calling thread, which becomes the owner of both ROUTER sockets; a second
/// thread owns the PostgreSQL connection, a third seals completed batches on a connection of its
/// own. They talk through mailboxes (see DESIGN.md).
public final class CoordinatorService: @unchecked Sendable {
    let configuration: CoordinatorConfiguration
    let logger: Logger
    private let wakeup = Wakeup()
    private let stopping = Mailbox<Bool>()
    private let replies: Mailbox<StoreReply>
    private let store: StoreThread
    private let sealer: SealThread
    private let leadership: LeadershipThread
    /// Snapshot requests from the metrics listener, answered by the loop (never by reading its
    /// state from another thread).
    private let snapshots: Mailbox<SnapshotRequest>
    private let beat = Beat()

    public init(configuration: CoordinatorConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        replies = Mailbox(wakeup: wakeup)
        store = StoreThread(conninfo: configuration.conninfo, limits: configuration.limits, replies: replies, logger: logger)
        sealer = SealThread(conninfo: configuration.conninfo, sealKey: configuration.sealKey, replies: replies, logger: logger)
        leadership = LeadershipThread(conninfo: configuration.conninfo, replies: replies, logger: logger)
        snapshots = Mailbox(wakeup: wakeup)
    }

    /// The kinds of protocol violations and dropped messages the loop counts (each exported from
    /// the first scrape, at 0 until it happens).
    public static let countedKinds = [
        "bad_client_messages", "bad_worker_messages", "batches_found_incomplete_at_seal", "client_replies_dropped",
        "client_requests_dropped", "client_requests_refused_busy", "jobs_set_aside_untried", "old_protocol_client_messages",
        "old_protocol_worker_messages", "sends_to_unreachable_workers", "credit_above_maximum", "done_for_unknown_batch",
        "done_without_assessment", "held_beyond_credit", "leases_expired", "failure_from_unregistered_worker", "failure_for_job_not_leased",
    ]

    /// What the metrics listener shows, asked of the loop; a standby (no loop yet) answers
    /// that it does not lead. Nil if the loop did not answer within `timeout` seconds.
    public func snapshot(timeout: Double = 2) -> CoordinatorSnapshot? {
        guard beat.active else { return CoordinatorSnapshot() }
        let request = SnapshotRequest()
        snapshots.post(request)
        return request.wait(timeout: timeout)
    }

    /// `/healthz`: the loop (or, for a standby, the leadership thread) ran within 10 s.
    public var isAlive: Bool { beat.secondsSince() < 10 }

    /// `/readyz`: nil when its owner threads run and PostgreSQL answered within 10 s.
    public var notReady: String? {
        if !isAlive { return "the coordinator's loop has not run for \(Int(beat.secondsSince())) s" }
        let silent = leadership.secondsSinceContact
        return silent < 10 ? nil : "PostgreSQL has not answered for \(Int(silent)) s"
    }

    /// Asks `run()` to return; safe from any thread or a signal handler's queue.
    public func stop() {
        SystemdNotify.stopping(status: "stopping: writing what is queued")
        stopping.post(true)
        wakeup.signal()
    }

    public func run() throws {
        beat.now()
        guard try leadership.becomeActive(shouldStop: { beat.now(); return stopping.count > 0 }) else {
            logger.info("standby stopped before taking over")
            return
        }
        // Confirmed every second on its own session; the loop stops dispatching without it.
        _ = OwnerThread("oversight-leader", mayEnd: { [leadership] in leadership.stopping.isClosed },
                        report: { [logger] in logger.critical("\($0)") }) { [leadership] in leadership.run() }
        defer { leadership.stop() }
        try store.prepare()
        sealer.summariseStale()
        let logger = self.logger
        let report: @Sendable (String) -> Void = { logger.critical("\($0)") }
        let storeThread = OwnerThread("oversight-store", mayEnd: { [store] in store.requests.isClosed }, report: report) { [store] in store.run() }
        let sealThread = OwnerThread("oversight-seal", mayEnd: { [sealer] in sealer.requests.isClosed }, report: report) { [sealer] in sealer.run() }
        defer {
            // SIGTERM: what the store thread still has queued (chunks, dead letters, failures)
            // is written before the process exits.
            store.requests.close()
            sealer.requests.close()
            if !storeThread.join(timeout: 30) { logger.warning("the store thread did not finish its queue within 30 s") }
            sealThread.join(timeout: 10)
        }

        let context = ZMQContext()
        defer { context.shutdown() }
        // The ZAP handler must listen before the first peer's handshake.
        let zap = try configuration.curve.map { curve in
            try ZAPHandler(context: context) { curve.authenticator.authorize($0) }
        }
        defer { zap?.stop() }
        let workers = try ZMQSocket(context, .router)
        if let curve = configuration.curve { try workers.makeCurveServer(curve.keys, zapDomain: Authenticator.workerDomain) }
        try workers.setRouterMandatory(true)
        try workers.setMaximumMessageSize(Int64(Envelope.maximumMessageSize))
        try workers.setSendHighWaterMark(10_000)
        try workers.setReceiveHighWaterMark(10_000)
        try workers.bind(configuration.workerEndpoint)
        let clients = try ZMQSocket(context, .router)
        if let curve = configuration.curve { try clients.makeCurveServer(curve.keys, zapDomain: Authenticator.clientDomain) }
        try clients.setRouterMandatory(true)
        try clients.setMaximumMessageSize(Int64(Envelope.maximumMessageSize))
        try clients.bind(configuration.clientEndpoint)
        logger.info("coordinator listening", metadata: [
            "workers": "\(workers.lastEndpoint)", "clients": "\(clients.lastEndpoint)",
            "security": "\(configuration.curve == nil ? "none (plain TCP)" : "CURVE")",
            "seal_key": "\(keyFingerprint(configuration.sealKey.publicKey))"])
        SystemdNotify.ready(status: "active: workers at \(workers.lastEndpoint), clients at \(clients.lastEndpoint)")

        let workerConnections = try ConnectionMonitor(workers, context: context)
        let clientConnections = try ConnectionMonitor(clients, context: context)
        var loop = Loop(service: self, workers: workers, clients: clients,
                        monitors: (workerConnections, clientConnections))
        beat.active = true
        try loop.run()
        workerConnections.close()
        clientConnections.close()
        workers.close()
        clients.close()
        logger.info("coordinator stopped")
    }

    /// State owned by the loop thread.
    private struct Loop {
        let service: CoordinatorService
        let workers: ZMQSocket
        let clients: ZMQSocket
        var dispatcher: Dispatcher
        let start = ContinuousClock.now
        /// Protocol violations and dropped messages, by kind (answered to COUNTERS).
        var counters: [String: Int] = [:]
        /// Jobs by outcome since this process began leading (for metrics).
        var jobs = CoordinatorSnapshot.Jobs()
        /// Made once the loop runs (after `--metrics` set the backend up; no-ops without it).
        let jobDuration = Metrics.Timer(label: "oversight_job_seconds")
        let bundleDuration = Metrics.Timer(label: "oversight_bundle_seconds")
        /// When this coordinator took each batch up (opened, resumed, or retried), for the age of
        /// the oldest pending job.
        var takenUp: [BatchID: Int64] = [:]
        /// Each running batch's committed count when the seal thread was last asked to fold it.
        var foldHinted: [BatchID: Int64] = [:]
        /// Records taken in by chunks stored since this process began leading.
        var intake = CoordinatorSnapshot.Intake()
        let monitors: (workers: ConnectionMonitor, clients: ConnectionMonitor)
        var workerConnections = ConnectionMonitor.Counts()
        var clientConnections = ConnectionMonitor.Counts()
        /// Each batch's organisation, for answering status without the database.
        var owners: [BatchID: String] = [:]
        /// Requests of each client still at the store thread: a reply from memory waits for
        /// them, so that every client hears its replies in the order of its requests.
        var outstanding: [[UInt8]: Int] = [:]
        /// READYs seen per worker name, to rate-limit their log lines.
        var readies: [String: Int] = [:]
        /// When the leadership session last confirmed the lock. Past `LeadershipThread.Deadlines.hold`
        /// without one, the loop is `held`: it dispatches nothing and its endpoints are unbound.
        var leadershipConfirmedAt: Int64 = 0
        var held = false
        /// The endpoints as bound (a wildcard port resolved), to unbind and bind again.
        let boundWorkerEndpoint: String
        let boundClientEndpoint: String
        /// This process's instance, answered to clients' HEARTBEATs: drawn at start, so that a
        /// client tells a restarted coordinator (or a standby that took over) from the one it
        /// spoke to; drawn again when it listens after a hold, whose ended connections lost the
        /// replies of requests in flight (a client then sends them again at once).
        var instance = UInt64.random(in: 1...UInt64.max)
        var logger: Logger { service.logger }

        init(service: CoordinatorService, workers: ZMQSocket, clients: ZMQSocket, monitors: (ConnectionMonitor, ConnectionMonitor)) {
            self.service = service
            self.workers = workers
            self.clients = clients
            self.monitors = (monitors.0, monitors.1)
            boundWorkerEndpoint = workers.lastEndpoint
            boundClientEndpoint = clients.lastEndpoint
            let c = service.configuration
            dispatcher = Dispatcher(configuration: .init(bundleSize: c.bundleSize, pendingWindow: c.pendingWindow,
                                                         heartbeatInterval: c.heartbeatIntervalMilliseconds,
                                                         liveness: c.liveness, maxAttempts: c.maxAttempts, maxCredit: c.maxCredit,
                                                         leaseTimeout: Int64(c.leaseTimeoutSeconds) * 1000))
        }

        var now: Int64 {
            let d = ContinuousClock.now - start
            return d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        }

        mutating func run() throws {
            var poller = ZMQPoller()
            poller.add(workers)
            poller.add(clients)
            poller.add(fileDescriptor: service.wakeup.fileDescriptor)
            var nextTick = now + dispatcherTick
            while service.stopping.count == 0 {
                service.beat.now()
                let ready = try poller.poll(timeout: Int(max(0, nextTick - now)))
                if ready[2] {
                    service.wakeup.drain()
                    for reply in service.replies.drain() { handle(reply) }
                    let requests = service.snapshots.drain()
                    if !requests.isEmpty {
                        takenUp = takenUp.filter { dispatcher.batches[$0.key] != nil }
                        let answer = snapshot
                        for request in requests { request.answer(answer) }
                    }
                }
                if ready[0] {
                    for _ in 0..<1000 {
                        guard let frames = try workers.receive(dontWait: true) else { break }
                        handleWorker(frames)
                    }
                }
                if ready[1] {
                    for _ in 0..<1000 {
                        guard let message = try clients.receiveMessage(dontWait: true) else { break }
                        handleClient(message.frames, userID: message.userID)
                    }
                }
                if !held && now - leadershipConfirmedAt > LeadershipThread.Deadlines.hold * 1000 {
                    hold()
                }
                if now >= nextTick && !held {
                    monitors.workers.collect(into: &workerConnections)
                    monitors.clients.collect(into: &clientConnections)
                    perform(dispatcher.tick(now: now))
                    hintFolds()
                    nextTick = now + dispatcherTick
                }
            }
            // Tell connected workers to go back to waiting for a coordinator.
            for id in dispatcher.workers.keys { try? workers.send([id] + CoordinatorMessage.disconnect.encode(), dontWait: true) }
        }

        /// Asks the seal thread to fold a running batch ahead of its seal each time another
        /// `SealFold.defaultPage` of its jobs has been committed.
        mutating func hintFolds() {
            for batch in dispatcher.batches.values where !batch.completed && !batch.cancelled {
                guard batch.done >= (foldHinted[batch.id] ?? 0) + SealFold.defaultPage else { continue }
                foldHinted[batch.id] = batch.done
                service.sealer.requests.post(.fold(batch.id))
            }
            if foldHinted.count > dispatcher.batches.count { foldHinted = foldHinted.filter { dispatcher.batches[$0.key] != nil } }
        }

        /// The loop's numbers for the metrics listener.
        var snapshot: CoordinatorSnapshot {
            var s = CoordinatorSnapshot()
            s.leader = !held
            s.jobs = jobs
            s.jobs.committed = dispatcher.jobsDone
            s.intake = intake
            for batch in dispatcher.batches.values where !batch.completed && !batch.cancelled {
                let leased = batch.leases.count
                let pending = max(0, Int(batch.accepted - batch.done - batch.failed) - leased)
                s.leased += leased
                s.pending += pending
                if pending > 0, let since = takenUp[batch.id] { s.oldestPendingAgeSeconds = max(s.oldestPendingAgeSeconds, Double(now - since) / 1000) }
                s.batches[batch.intakeClosed ? "running" : "receiving", default: 0] += 1
            }
            for worker in dispatcher.workers.values where !worker.absent {
                s.workers += 1
                s.credit += worker.credit
            }
            s.violations = counters
            return s
        }

        var dispatcherTick: Int64 { max(50, service.configuration.heartbeatIntervalMilliseconds / 4) }
        /// Milliseconds a worker has, after a hold, to reconnect: its backoff (at most 8 s) and
        /// ZeroMQ's reconnect interval (at most 2 s).
        static let resumeGrace: Int64 = 10_000

        /// The leadership session has not confirmed the lock for `Deadlines.hold` seconds: it may
        /// be cut off from PostgreSQL, which frees the lock for a standby `Deadlines.serverRelease`
        /// seconds after it last heard from it. Before that, this coordinator stops dispatching and
        /// unbinds both endpoints: to workers and clients it is gone, and they move to whichever
        /// coordinator answers. Jobs leased stay leased until the lock is confirmed again.
        mutating func hold() {
            held = true
            logger.critical("cannot confirm leadership with PostgreSQL; stopping dispatch and closing the endpoints until it is confirmed (another coordinator may take over)",
                            metadata: ["silent_s": "\((now - leadershipConfirmedAt) / 1000)"])
            try? workers.unbind(boundWorkerEndpoint)
            try? clients.unbind(boundClientEndpoint)
        }

        /// Leadership confirmed after a hold: the workers it knew will announce themselves on new
        /// connections (a READY names what each holds, and takes those leases back); what a
        /// worker that does not come back within `resumeGrace` held goes back to the queue,
        /// uncharged: the coordinator was away, not it.
        mutating func resume() {
            held = false
            instance = UInt64.random(in: 1...UInt64.max)
            dispatcher.resumed(now: now, grace: Self.resumeGrace)
            do {
                try workers.bind(boundWorkerEndpoint)
                try clients.bind(boundClientEndpoint)
                logger.notice("leadership confirmed again; dispatching")
            } catch {
                // Another process took the port meanwhile: nothing this coordinator can serve.
                logger.critical("cannot listen again after a hold; exiting (restart this one)", metadata: ["error": "\(error)"])
                exit(75)
            }
        }

        mutating func handleWorker(_ frames: [[UInt8]]) {
            guard frames.count >= 2 else { return }
            let id = frames[0]
            do {
                let message = try WorkerMessage.decode(frames[1...])
                if case .ready(let name, let credit, let held) = message {
                    // Per name, the first three and then every power of two: a worker that
                    // reconnects in a loop cannot flood the log.
                    let n = (readies[name] ?? 0) + 1
                    if readies.count > 10_000 { readies = [:] }
                    readies[name] = n
                    if n <= 3 || n & (n - 1) == 0 {
                        logger.info("worker ready", metadata: ["worker": "\(name)", "credit": "\(credit)",
                                                              "held": "\(held.reduce(0) { $0 + $1.jobs.count })", "readies": "\(n)"])
                    }
                }
                perform(dispatcher.received(from: id, message, now: now))
            } catch {
                if error.code == .oldProtocol {
                    count("old_protocol_worker_messages", "dropped a message from a worker of an older protocol version", error)
                } else {
                    count("bad_worker_messages", "dropped a bad message from a worker", error)
                }
            }
        }

        /// Counts a dropped message; logs the first ten and then every power of two, so that a
        /// flooding peer cannot flood the log.
        mutating func count(_ counter: String, _ message: Logger.Message, _ error: any Error, by amount: Int = 1) {
            let before = counters[counter, default: 0]
            counters[counter] = before + amount
            let n = before + amount
            // Logged when the count passes a power of two (and the first ten).
            if n <= 10 || (before == 0 ? 0 : Int.bitWidth - before.leadingZeroBitCount) < Int.bitWidth - n.leadingZeroBitCount {
                logger.warning(message, metadata: ["error": "\(error)", "count": "\(n)"])
            }
        }

        /// Everything counted, for COUNTERS (and `oversight status --coordinator`).
        var counterValues: [Wire.Counter] {
            var all = counters
            all["worker_connections_accepted"] = workerConnections.accepted
            all["worker_disconnects"] = workerConnections.disconnected
            all["worker_handshake_failures"] = workerConnections.handshakeFailed
            all["client_connections_accepted"] = clientConnections.accepted
            all["client_disconnects"] = clientConnections.disconnected
            all["client_handshake_failures"] = clientConnections.handshakeFailed
            return all.sorted { $0.key < $1.key }.map { Wire.Counter(name: $0.key, value: UInt64($0.value)) }
        }

        /// Most requests of one client waiting at the store thread before more are refused (in
        /// order, ERROR 5), and before more are dropped unanswered: one client that floods
        /// requests (or never reads its replies) cannot queue unbounded work ahead of everyone
        /// else's chunks. A client that keeps to OPENED's window never comes near either.
        static let maxQueuedPerClient = 64
        static let maxUnansweredPerClient = 1_024

        /// A client's request for the store thread, unless that client has too many waiting.
        mutating func admit(_ request: StoreRequest) {
            guard let client = request.client else { return toStore(request) }
            let waiting = outstanding[client, default: 0]
            if waiting >= Self.maxUnansweredPerClient {
                count("client_requests_dropped", "dropped a request: its client has too many unanswered",
                      StoreError(message: "\(waiting) requests of one client unanswered"))
                return
            }
            var answeredFromMemory = false
            if case .inOrder = request { answeredFromMemory = true }
            if waiting >= Self.maxQueuedPerClient && !answeredFromMemory {
                count("client_requests_refused_busy", "refused a request: its client has too many waiting",
                      StoreError(message: "\(waiting) requests of one client waiting"))
                return toStore(.inOrder(client: client, organisation: "", batchID: request.batchID,
                                        error: "too many requests waiting: at most \(Self.maxQueuedPerClient) unanswered requests per client; read the replies before sending more"))
            }
            toStore(request)
        }

        /// Posts a client's request to the store thread, counting it as outstanding.
        mutating func toStore(_ request: StoreRequest) {
            if let client = request.client { outstanding[client, default: 0] += 1 }
            service.store.requests.post(request)
        }

        mutating func handleClient(_ frames: [[UInt8]], userID: String?) {
            guard frames.count >= 2 else { return }
            let client = frames[0]
            // With CURVE, the ZAP handler names the client's organisation; without, the
            // (loopback) client is the installation's own.
            let organisation = userID ?? Organisation.local
            let request: ClientRequest
            do { request = try ClientRequest.decode(frames[1...]) } catch {
                if error.code == .oldProtocol {
                    count("old_protocol_client_messages", "refused a client of an older protocol version", error)
                    try? clients.send([client] + ClientReply.olderVersionError(error.detail), dontWait: true)
                    return
                }
                count("bad_client_messages", "dropped a bad message from a client", error)
                // In order: the client's earlier requests are answered first.
                if outstanding[client] != nil {
                    admit(.inOrder(client: client, organisation: organisation, batchID: BatchID.none, error: "bad request: \(error)"))
                } else {
                    reply(client, .error(code: ClientReply.ErrorCode.badRequest.rawValue, batchID: nil, chunk: nil, message: "bad request: \(error)"))
                }
                return
            }
            switch request {
            case .open(let batchID, let name, let packs, let source, let options):
                admit(.open(client: client, organisation: organisation, batchID: batchID, name: name, packs: packs, source: source, options: options))
            case .chunk(let batchID, let number, let records):
                admit(.chunk(client: client, organisation: organisation, batchID: batchID, number: number, records: records))
            case .close(let batchID, let chunks):
                admit(.close(client: client, organisation: organisation, batchID: batchID, chunks: chunks))
            case .retry(let batchID):
                admit(.retry(client: client, organisation: organisation, batchID: batchID))
            case .cancel(let batchID):
                admit(.cancel(client: client, organisation: organisation, batchID: batchID))
            case .status(let batchID):
                if owners[batchID] == organisation, dispatcher.progress(batchID) != nil {
                    if outstanding[client] != nil {
                        admit(.inOrder(client: client, organisation: organisation, batchID: batchID, error: nil))
                    } else {
                        answerFromMemory(client, organisation: organisation, batchID: batchID)
                    }
                } else {
                    admit(.status(client: client, organisation: organisation, batchID: batchID))
                }
            case .counters:
                if outstanding[client] != nil {
                    admit(.inOrder(client: client, organisation: organisation, batchID: BatchID.none, error: nil))
                } else {
                    reply(client, .counters(counterValues))
                }
            case .heartbeat(let nonce):
                // Not a request: answered at once, ahead of replies still at the store thread.
                reply(client, .heartbeat(nonce: nonce, instance: instance))
            }
        }

        /// A STATUS (or COUNTERS, for `BatchID.none`) answered from what the loop holds.
        mutating func answerFromMemory(_ client: [UInt8], organisation: String, batchID: BatchID) {
            if batchID == BatchID.none { reply(client, .counters(counterValues)); return }
            if owners[batchID] == organisation, let progress = dispatcher.progress(batchID) {
                reply(client, .status(progress))
            } else {
                reply(client, .error(code: ClientReply.ErrorCode.unknownBatch.rawValue, batchID: batchID, chunk: nil, message: "no such batch"))
            }
        }

        mutating func handle(_ reply: StoreReply) {
            if let client = reply.client, let n = outstanding[client] {
                outstanding[client] = n > 1 ? n - 1 : nil
            }
            switch reply {
            case .unfinished(let batches, let done, let dead):
                for b in batches {
                    let id = b.batchID
                    owners[id] = b.organisation
                    takenUp[id] = takenUp[id] ?? now
                    logger.info("resuming unfinished batch", metadata: ["batch": "\(id)", "accepted": "\(b.accepted)", "assessed": "\(done[b.batchID] ?? 0)"])
                    perform(dispatcher.batchOpened(id, criteriaSHA256: b.criteriaSHA256, accepted: b.accepted, rejected: b.rejected,
                                                   done: done[b.batchID] ?? 0, failed: dead[b.batchID] ?? 0, intakeClosed: b.intakeClosed))
                }
            case .opened(let client, let batch):
                let id = batch.batchID
                owners[id] = batch.organisation
                takenUp[id] = takenUp[id] ?? now
                perform(dispatcher.batchOpened(id, criteriaSHA256: batch.criteriaSHA256, accepted: batch.accepted, rejected: batch.rejected,
                                               done: 0, intakeClosed: batch.intakeClosed))
                logger.info("batch open", metadata: ["batch": "\(id)", "name": "\(batch.name)", "resumed_after_chunk": "\(batch.acknowledgedChunks)"])
                self.reply(client, .opened(batchID: id, acknowledgedChunks: UInt64(batch.acknowledgedChunks), window: service.configuration.clientWindow,
                                           input: StoredInput(lastLine: batch.input.lastLine, sha256: batch.input.sha256)))
            case .chunkStored(let client, let batchID, let number, let jobs, let rejections, let fresh):
                if fresh {
                    intake.accepted += Int64(jobs.count)
                    intake.rejected += Int64(rejections.count)
                    perform(dispatcher.chunkStored(batchID, jobs: jobs, rejected: rejections.count, now: now))
                }
                self.reply(client, .acknowledged(batchID: batchID, number: number, accepted: UInt32(jobs.count), rejections: rejections))
            case .closed(let client, let batchID, let ended):
                perform(dispatcher.intakeClosed(batchID))
                let progress = dispatcher.progress(batchID) ?? ended ?? BatchProgress(batchID: batchID, state: .unknown, accepted: 0, rejected: 0, done: 0, failed: 0)
                logger.info("batch intake closed", metadata: ["batch": "\(batchID)", "accepted": "\(progress.accepted)", "rejected": "\(progress.rejected)"])
                self.reply(client, .closed(progress))
            case .status(let client, let progress):
                if let progress { self.reply(client, .status(progress)) } else {
                    self.reply(client, .error(code: ClientReply.ErrorCode.unknownBatch.rawValue, batchID: nil, chunk: nil, message: "no such batch"))
                }
            case .loaded(let batchID, let jobs, let exhausted, let through):
                perform(dispatcher.jobsLoaded(batchID, jobs: jobs, exhausted: exhausted, through: through, now: now))
            case .completed(let batchID):
                dispatcher.completionRecorded(batchID)
            case .leadershipConfirmed:
                leadershipConfirmedAt = now
                if held { resume() }
            case .retried(let client, let batch, let count):
                let id = batch.batchID
                owners[id] = batch.organisation
                takenUp[id] = now
                // A batch this coordinator no longer holds (completed before it started) is loaded.
                perform(dispatcher.batchOpened(id, criteriaSHA256: batch.criteriaSHA256, accepted: batch.accepted, rejected: batch.rejected,
                                               done: 0, intakeClosed: batch.intakeClosed))
                perform(dispatcher.retried(id, count: count, now: now))
                self.reply(client, .status(dispatcher.progress(id)
                    ?? BatchProgress(batchID: id, state: .running, accepted: batch.accepted, rejected: batch.rejected, done: 0, failed: 0)))
            case .cancelled(let client, let batchID):
                dispatcher.cancelled(batchID)
                self.reply(client, .status(dispatcher.progress(batchID)
                    ?? BatchProgress(batchID: batchID, state: .cancelled, accepted: 0, rejected: 0, done: 0, failed: 0)))
            case .reconciled(let batchID, let accepted, let assessed, let dead):
                perform(dispatcher.reconciled(batchID, accepted: accepted, assessed: assessed, deadLetters: dead, now: now))
            case .sealRefused(let batchID, let assessed, let dead, let missing):
                count("batches_found_incomplete_at_seal", "a batch counted done was not complete in the store; its missing jobs are sent again",
                      StoreError(message: "batch \(batchID): \(missing.count) jobs without assessment or dead letter"))
                perform(dispatcher.sealRefused(batchID, assessed: assessed, deadLetters: dead, missing: missing, now: now))
            case .doneVerified(let batchID, let claimed, let present):
                perform(dispatcher.doneVerified(batchID, claimed: claimed, present: present, now: now))
            case .givenUpButAssessed(let batchID, let seq):
                perform(dispatcher.givenUpButAssessed(batchID, seq: seq))
            case .inOrder(let client, let organisation, let batchID, let error):
                if let error {
                    self.reply(client, .error(code: ClientReply.ErrorCode.badRequest.rawValue, batchID: nil, chunk: nil, message: error))
                } else {
                    answerFromMemory(client, organisation: organisation, batchID: batchID)
                }
            case .loadFailed(let batchID):
                perform(dispatcher.jobsLoaded(batchID, jobs: [], exhausted: false, through: 0, now: now))
            case .failed(let client, let code, let batchID, let chunk, let message):
                self.reply(client, .error(code: code.rawValue, batchID: batchID, chunk: chunk, message: message))
            }
        }

        mutating func perform(_ actions: [Dispatcher.Action]) {
            var queue = actions[...]
            while let action = queue.popFirst() {
                switch action {
                case .send(let worker, let message):
                    if case .jobs(let bundle) = message {
                        jobs.dispatched += Int64(bundle.jobs.count)
                        jobs.retried += Int64(bundle.jobs.count { $0.attempt > 0 })
                    }
                    do {
                        try workers.send([worker] + message.encode(), dontWait: true)
                    } catch {
                        // Counted, and logged rate-limited: a flood of HEARTBEATs from sockets
                        // that vanished made this line 40,000 times in 3 s.
                        count("sends_to_unreachable_workers", "a worker is unreachable (its connection is gone): the message was dropped and any jobs it held return to pending", error)
                        var undelivered: JobBundle?
                        if case .jobs(let bundle) = message { undelivered = bundle }
                        queue.append(contentsOf: dispatcher.sendFailed(to: worker, undelivered: undelivered, now: now))
                    }
                case .load(let batch, let afterSeq, let limit):
                    service.store.requests.post(.load(batchID: batch, afterSeq: afterSeq, limit: limit))
                case .markCompleted(let batch):
                    service.sealer.requests.post(.seal(batch))
                case .recordFailure(let batch, let seq, let attempt, let worker, let reason):
                    jobs.failed += 1
                    service.store.requests.post(.recordFailure(batch, seq: seq, attempt: attempt, worker: worker, reason: reason))
                case .reconcile(let batch):
                    service.store.requests.post(.reconcile(batch))
                case .verifyDone(let batch, let seqs, let worker):
                    service.store.requests.post(.verifyDone(batch, seqs: seqs, worker: worker))
                case .violation(let kind, let n):
                    count(kind, "a worker broke the protocol; ignored", StoreError(message: kind), by: n)
                case .committedAfter(let milliseconds):
                    // From lease to DONE: each job's, and the bundle's (its slowest job).
                    for ms in milliseconds { jobDuration.recordMilliseconds(ms) }
                    if let slowest = milliseconds.max() { bundleDuration.recordMilliseconds(slowest) }
                case .setAside(let n):
                    count("jobs_set_aside_untried", "a worker was lost holding several jobs: they are tested again in isolation, without an attempt",
                          StoreError(message: "lost with their worker"), by: n)
                case .deadLetter(let batch, let seq, let attempts, let reason):
                    jobs.deadLettered += 1
                    logger.warning("job given up", metadata: ["batch": "\(batch)", "seq": "\(seq)", "attempts": "\(attempts)", "error": "\(reason)"])
                    service.store.requests.post(.deadLetter(batch, seq: seq, attempts: attempts, reason: reason))
                }
            }
        }

        /// Sends a reply; one to a client that went away (or never reads) is dropped and counted,
        /// and logged as `count` rate-limits it, so that vanished sockets cannot flood the log.
        mutating func reply(_ client: [UInt8], _ message: ClientReply) {
            do { try clients.send([client] + message.encode(), dontWait: true) } catch {
                count("client_replies_dropped", "dropped a reply: its client went away or does not read its replies", error)
            }
        }
    }
}

/// What a coordinator's loop reports to its metrics listener.
public struct CoordinatorSnapshot: Sendable {
    public struct Jobs: Sendable {
        public var dispatched: Int64 = 0, committed: Int64 = 0, failed: Int64 = 0, retried: Int64 = 0, deadLettered: Int64 = 0
    }
    /// It holds the leadership lock and dispatches (a standby, or a leader that holds, does not).
    public var leader = false
    public var jobs = Jobs()
    public struct Intake: Sendable { public var accepted: Int64 = 0, rejected: Int64 = 0 }
    /// Records accepted as jobs and rejected, from the chunks stored.
    public var intake = Intake()
    /// Jobs of unfinished batches not yet done and not leased, and those leased to workers.
    public var pending = 0, leased = 0
    /// Seconds since the oldest batch with jobs pending was taken up (opened, resumed or retried):
    /// jobs go out in order, so no pending job is older; 0 with none pending.
    public var oldestPendingAgeSeconds = 0.0
    /// Workers connected, and the credit they were granted in all.
    public var workers = 0, credit = 0
    /// Unfinished batches by state (`receiving`, `running`).
    public var batches: [String: Int] = [:]
    /// Protocol violations and dropped messages, by kind (as `oversight status --counters`).
    public var violations: [String: Int] = [:]
}

/// One snapshot asked of the loop, and its answer.
final class SnapshotRequest: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var value: CoordinatorSnapshot?
    func answer(_ snapshot: CoordinatorSnapshot) {
        lock.withLock { value = snapshot }
        done.signal()
    }
    func wait(timeout: Double) -> CoordinatorSnapshot? {
        guard done.wait(timeout: .now() + timeout) == .success else { return nil }
        return lock.withLock { value }
    }
}

/// When the loop (or a waiting standby) last ran: a timestamp, for `/healthz`.
final class Beat: @unchecked Sendable {
    private let lock = NSLock()
    private var last = ContinuousClock.now
    private var isActive = false
    func now() { lock.withLock { last = ContinuousClock.now } }
    func secondsSince() -> Double {
        let d = ContinuousClock.now - lock.withLock { last }
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
    var active: Bool {
        get { lock.withLock { isActive } }
        set { lock.withLock { isActive = newValue } }
    }
}
