import CZeroMQ
import Foundation

/// Watches a socket's security handshakes (zmq_socket_monitor), so that a peer refused by the
/// other side's ZAP handler, or holding the wrong server key, can say so instead of waiting.
/// Lives on the thread that owns the watched socket.
public final class HandshakeMonitor {
    public enum Failure: Sendable, Equatable {
        /// The server's ZAP handler refused this peer's key; `status` is the ZAP status code.
        case refused(status: Int32)
        /// The handshake broke (e.g. the server has another key than the one given, or no CURVE).
        case failed
    }

    private let pair: ZMQSocket

    public init(_ socket: ZMQSocket, context: ZMQContext) throws(ZMQError) {
        let endpoint = "inproc://oversight-handshake-\(UUID().uuidString)"
        let events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        _ = try check("zmq_socket_monitor") { zmq_socket_monitor(socket.handle, endpoint, events) }
        pair = try ZMQSocket(context, .pair)
        try pair.connect(endpoint)
    }

    deinit { pair.close() }

    /// Closes the monitor's socket; do it before the context terminates.
    public func close() { pair.close() }

    /// Handshake failures seen since the last call.
    public func failures() -> [Failure] {
        var found: [Failure] = []
        while let frames = try? pair.receive(dontWait: true) {
            guard let first = frames.first, first.count >= 6 else { continue }
            let event = UInt16(first[0]) | UInt16(first[1]) << 8
            let value = first[2...5].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            if Int32(event) == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH {
                found.append(.refused(status: Int32(bitPattern: value)))
            } else {
                found.append(.failed)
            }
        }
        return found
    }
}

/// Counts what libzmq does to a bound socket's connections without telling its owner: peers
/// disconnected (among them a peer that sent a message over ZMQ_MAXMSGSIZE, which libzmq
/// drops itself; it cannot be told apart from a peer that left) and handshakes that failed.
public final class ConnectionMonitor {
    public struct Counts: Sendable, Equatable {
        public var accepted = 0
        public var disconnected = 0
        public var handshakeFailed = 0
        public init() {}
    }

    private let pair: ZMQSocket

    public init(_ socket: ZMQSocket, context: ZMQContext) throws(ZMQError) {
        let endpoint = "inproc://oversight-connections-\(UUID().uuidString)"
        let events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
            | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        _ = try check("zmq_socket_monitor") { zmq_socket_monitor(socket.handle, endpoint, events) }
        pair = try ZMQSocket(context, .pair)
        try pair.connect(endpoint)
    }

    deinit { pair.close() }

    public func close() { pair.close() }

    /// Adds the events seen since the last call to `counts`.
    public func collect(into counts: inout Counts) {
        while let frames = try? pair.receive(dontWait: true) {
            guard let first = frames.first, first.count >= 6 else { continue }
            let event = Int32(UInt16(first[0]) | UInt16(first[1]) << 8)
            switch event {
            case ZMQ_EVENT_ACCEPTED: counts.accepted += 1
            case ZMQ_EVENT_DISCONNECTED: counts.disconnected += 1
            default: counts.handshakeFailed += 1
            }
        }
    }
}
