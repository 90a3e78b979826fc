import Foundation
import Wire
import ZeroMQ

/// A client's connection to the coordinator's client socket: request, then wait for the reply,
/// with a deadline and a clear error when nobody answers.
///
/// While it waits, the client sends HEARTBEATs (one with each request, then one a second): a
/// coordinator that has answered one and then stays silent for `liveness` seconds is gone, and
/// one that answers with another instance than before was restarted or replaced by a standby,
/// so the requests sent to it are lost. Either throws `Unreachable` within seconds, not after a
/// TCP timeout or a reply deadline.
final class CoordinatorClient {
    struct Unreachable: Error, CustomStringConvertible {
        enum Kind: Sendable {
            /// No coordinator ever answered: a wrong address, or none running.
            case neverAnswered
            /// One answered before and is silent now: it died, or the network between failed.
            case silent
            /// One answered, but another process than the one this client spoke to: it
            /// restarted, or a standby took over. Requests sent before are lost; send them again.
            case replaced
            /// It answers heartbeats but not the request, within the deadline.
            case noReply
        }
        let endpoint: String
        let seconds: Int
        var kind = Kind.neverAnswered
        var replaced: Bool { kind == .replaced }
        var description: String {
            switch kind {
            case .replaced:
                return "the coordinator at \(endpoint) restarted or a standby took over; what was sent before its answer is lost"
            case .silent:
                return "the coordinator at \(endpoint) stopped answering (silent for \(seconds) s): it stopped, or the network between us failed"
            case .noReply:
                return "the coordinator at \(endpoint) is up but gave no reply within \(seconds) s (its database may be slow or away)"
            case .neverAnswered:
                return "no answer from the coordinator at \(endpoint) within \(seconds) s; is `oversight coordinator` running and reachable there? (set it with --coordinator)"
            }
        }
    }

    struct Refused: Error, CustomStringConvertible {
        let message: String
        /// The coordinator could not reach its database: asking again later may work.
        var retryable = false
        /// The coordinator lost chunks (it restarted): open the batch again and resume.
        var resumable = false
        /// The batch's intake is already closed.
        var closed = false
        var description: String { message }
    }

    let endpoint: String
    /// Seconds to wait for a first answer from a coordinator.
    let timeout: Int
    /// Seconds to wait for a reply by default once a coordinator answers heartbeats: silence is
    /// caught by `liveness`, so this only bounds a slow answer (the coordinator itself answers
    /// ERROR 4 when its database does not answer in time).
    var replyDeadline = 60
    /// Seconds of silence, after a heartbeat, that mean a coordinator which was answering is gone.
    let liveness: Double
    /// Seconds between heartbeats while the client waits.
    let heartbeatInterval: Double
    private let context = ZMQContext()
    private let socket: ZMQSocket
    private let monitor: HandshakeMonitor?
    /// The coordinator process this client speaks to, once a heartbeat has been answered;
    /// forgotten when it falls silent, so that whichever answers next is pinned.
    private(set) var instance: UInt64?
    /// Whether any coordinator has answered a heartbeat: from then on silence is measured by
    /// `liveness`, and a reply by `replyDeadline`.
    private(set) var answered = false
    private var nonce: UInt64 = 0
    private var lastHeartbeat = Date.distantPast
    /// When the oldest heartbeat sent since the coordinator last said anything was sent.
    private var unansweredSince: Date?

    init(endpoint: String, curve: CurveClient?, timeoutSeconds: Int = 15, liveness: Double = 5, heartbeatInterval: Double = 1) throws {
        self.endpoint = endpoint
        self.timeout = timeoutSeconds
        self.liveness = liveness
        self.heartbeatInterval = heartbeatInterval
        socket = try ZMQSocket(context, .dealer)
        if let curve { try socket.makeCurveClient(curve.keys, serverKey: curve.serverKey) }
        monitor = curve == nil ? nil : try HandshakeMonitor(socket, context: context)
        try socket.setMaximumMessageSize(Int64(Envelope.maximumMessageSize))
        try socket.setSendHighWaterMark(64)
        // Queue requests only on connections that are up: with a standby endpoint listed, a
        // request must never wait in the pipe of a coordinator that is not listening.
        try socket.setImmediate(true)
        try socket.setSendTimeout(milliseconds: Int32(timeoutSeconds * 1000))
        for one in endpoint.split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) {
            do { try socket.connect(one) } catch {
                throw Refused(message: "invalid coordinator endpoint \"\(one)\": \(error.message) (expected e.g. tcp://127.0.0.1:5556)")
            }
        }
    }

    deinit {
        monitor?.close()
        socket.close()
        context.shutdown()
    }

    func send(_ request: ClientRequest) throws {
        // A heartbeat goes with the first request, so that the instance answering it is known
        // before any reply is awaited. It waits for the connection as the request does: sent
        // without waiting, it was dropped while the connection was still being made, and a
        // coordinator that died in the first second after OPEN was then waited for as long as
        // --timeout, unnoticed (a flaky fault test on a loaded machine).
        do {
            if instance == nil { try heartbeat(force: true, waiting: true) }
            try socket.send(request.encode())
        } catch where error.code == .wouldBlock {
            // No connection completed: say why, if the handshake says.
            if let failure = monitor?.failures().first { throw Refused(message: Self.explain(failure)) }
            if answered { instance = nil; throw Unreachable(endpoint: endpoint, seconds: Int(liveness.rounded(.up)), kind: .silent) }
            throw Unreachable(endpoint: endpoint, seconds: timeout)
        }
    }

    /// Sends a HEARTBEAT if the last one is `heartbeatInterval` old (or `force`). Never blocks:
    /// one that cannot be queued (no connection, a full pipe) is not sent, and the silence counts.
    /// `waiting`: as long as a request would (the send timeout), throwing if it cannot be queued.
    private func heartbeat(force: Bool = false, waiting: Bool = false) throws(ZMQError) {
        let now = Date()
        guard force || now.timeIntervalSince(lastHeartbeat) >= heartbeatInterval else { return }
        lastHeartbeat = now
        nonce &+= 1
        if unansweredSince == nil { unansweredSince = now }
        if waiting {
            try socket.send(ClientRequest.heartbeat(nonce: nonce).encode())
        } else {
            try? socket.send(ClientRequest.heartbeat(nonce: nonce).encode(), dontWait: true)
        }
    }

    /// The next reply, or `Unreachable`: after `timeoutSeconds` (or the client's timeout), or
    /// sooner when a coordinator that was answering falls silent or is replaced. Error replies
    /// throw `Refused`.
    func receive(timeoutSeconds: Int? = nil) throws -> ClientReply {
        var poller = ZMQPoller()
        poller.add(socket)
        let seconds = timeoutSeconds ?? (answered ? max(timeout, replyDeadline) : timeout)
        let deadline = Date().addingTimeInterval(Double(seconds))
        while Date() < deadline {
            if let failure = monitor?.failures().first { throw Refused(message: Self.explain(failure)) }
            try heartbeat()
            let ready = try poller.poll(timeout: 100)
            guard ready[0], let frames = try socket.receive(dontWait: true) else {
                // Silence is judged only with nothing left to read.
                if answered, let since = unansweredSince, Date().timeIntervalSince(since) > liveness {
                    unansweredSince = nil
                    instance = nil
                    throw Unreachable(endpoint: endpoint, seconds: Int(liveness.rounded(.up)), kind: .silent)
                }
                continue
            }
            let reply = try ClientReply.decode(frames[...])
            // Anything the coordinator says shows that it is there.
            unansweredSince = nil
            if case .heartbeat(_, let answering) = reply {
                if let known = instance, known != answering {
                    // Pinned to the new one: the caller resumes with it.
                    instance = answering
                    throw Unreachable(endpoint: endpoint, seconds: 0, kind: .replaced)
                }
                instance = answering
                if !answered {
                    answered = true
                    // From now on silence is measured by heartbeats: a send that cannot be
                    // queued for `liveness` seconds means the coordinator is gone.
                    try? socket.setSendTimeout(milliseconds: Int32(liveness * 1000))
                }
                continue
            }
            if case .error(let code, _, _, let message) = reply {
                throw Refused(message: "coordinator refused: \(message)", retryable: code == ClientReply.ErrorCode.storeUnavailable.rawValue,
                              resumable: code == ClientReply.ErrorCode.outOfOrder.rawValue,
                              closed: code == ClientReply.ErrorCode.closed.rawValue)
            }
            return reply
        }
        throw Unreachable(endpoint: endpoint, seconds: seconds, kind: answered ? .noReply : .neverAnswered)
    }

    static func explain(_ failure: HandshakeMonitor.Failure) -> String {
        switch failure {
        case .refused:
            return "the coordinator refused this client's key: ask its operator to add your public .key file (with your organisation) to its --client-keys directory"
        case .failed:
            return "the secure handshake with the coordinator failed: is --coordinator-key the key of this coordinator, and does it run with --key?"
        }
    }

    func request(_ request: ClientRequest, timeoutSeconds: Int? = nil) throws -> ClientReply {
        try send(request)
        return try receive(timeoutSeconds: timeoutSeconds)
    }
}
