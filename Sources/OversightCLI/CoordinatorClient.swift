import Foundation
import Wire
import ZeroMQ

/// A client's connection to the coordinator's client socket: request, then wait for the reply,
/// with a deadline and a clear error when nobody answers.
final class CoordinatorClient {
    struct Unreachable: Error, CustomStringConvertible {
        let endpoint: String
        let seconds: Int
        var description: String {
            "no answer from the coordinator at \(endpoint) within \(seconds) s; is `oversight coordinator` running and reachable there? (set it with --coordinator)"
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
    let timeout: Int
    private let context = ZMQContext()
    private let socket: ZMQSocket
    private let monitor: HandshakeMonitor?

    init(endpoint: String, curve: CurveClient?, timeoutSeconds: Int = 15) throws {
        self.endpoint = endpoint
        self.timeout = timeoutSeconds
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
        do { try socket.send(request.encode()) } catch where error.code == .wouldBlock {
            // No connection completed: say why, if the handshake says.
            if let failure = monitor?.failures().first { throw Refused(message: Self.explain(failure)) }
            throw Unreachable(endpoint: endpoint, seconds: timeout)
        }
    }

    /// The next reply, or `Unreachable` after the timeout. Error replies throw `Refused`.
    func receive(timeoutSeconds: Int? = nil) throws -> ClientReply {
        var poller = ZMQPoller()
        poller.add(socket)
        let seconds = timeoutSeconds ?? timeout
        let deadline = Date().addingTimeInterval(Double(seconds))
        while Date() < deadline {
            if let failure = monitor?.failures().first { throw Refused(message: Self.explain(failure)) }
            let ready = try poller.poll(timeout: 200)
            guard ready[0], let frames = try socket.receive(dontWait: true) else { continue }
            let reply = try ClientReply.decode(frames[...])
            if case .error(let code, _, _, let message) = reply {
                throw Refused(message: "coordinator refused: \(message)", retryable: code == ClientReply.ErrorCode.storeUnavailable.rawValue,
                              resumable: code == ClientReply.ErrorCode.outOfOrder.rawValue,
                              closed: code == ClientReply.ErrorCode.closed.rawValue)
            }
            return reply
        }
        throw Unreachable(endpoint: endpoint, seconds: seconds)
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
