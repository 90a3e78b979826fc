import CZeroMQ

/// A libzmq socket. Not thread-safe: create it on the thread that owns it and touch it from no
/// other. (Not `Sendable` for that reason.)
public final class ZMQSocket {
    public enum Kind: Sendable {
        case router, dealer, pair, push, pull, pub, sub, req, rep
        var raw: Int32 {
            switch self {
            case .router: ZMQ_ROUTER
            case .dealer: ZMQ_DEALER
            case .pair: ZMQ_PAIR
            case .push: ZMQ_PUSH
            case .pull: ZMQ_PULL
            case .pub: ZMQ_PUB
            case .sub: ZMQ_SUB
            case .req: ZMQ_REQ
            case .rep: ZMQ_REP
            }
        }
    }

    let handle: UnsafeMutableRawPointer
    public let kind: Kind
    private var closed = false

    public init(_ context: ZMQContext, _ kind: Kind) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, kind.raw) else {
            throw ZMQError(operation: "zmq_socket")
        }
        self.handle = handle
        self.kind = kind
        // Never block process exit on unsent messages by default; callers that must flush set linger.
        try? setOption(ZMQ_LINGER, Int32(0))
    }

    deinit { close() }

    public func close() {
        guard !closed else { return }
        closed = true
        zmq_close(handle)
    }

    public func bind(_ endpoint: String) throws(ZMQError) {
        _ = try check("zmq_bind(\(endpoint))") { zmq_bind(handle, endpoint) }
    }

    /// Stops listening on `endpoint` (as bound: `lastEndpoint` after a wildcard port), and
    /// ends the connections accepted through it.
    public func unbind(_ endpoint: String) throws(ZMQError) {
        _ = try check("zmq_unbind(\(endpoint))") { zmq_unbind(handle, endpoint) }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        _ = try check("zmq_connect(\(endpoint))") { zmq_connect(handle, endpoint) }
    }

    public func disconnect(_ endpoint: String) throws(ZMQError) {
        _ = try check("zmq_disconnect(\(endpoint))") { zmq_disconnect(handle, endpoint) }
    }

    /// The endpoint actually bound, e.g. after binding `tcp://127.0.0.1:*`.
    public var lastEndpoint: String {
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Options

    public func setOption(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var v = value
        _ = try check("zmq_setsockopt(\(option))") { zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) }
    }

    public func setOption(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var v = value
        _ = try check("zmq_setsockopt(\(option))") { zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) }
    }

    public func setOption(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        _ = try check("zmq_setsockopt(\(option))") {
            bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        }
    }

    /// Milliseconds to keep unsent messages after close (0: drop them, -1: wait forever).
    public func setLinger(milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_LINGER, milliseconds) }
    public func setSendHighWaterMark(_ messages: Int32) throws(ZMQError) { try setOption(ZMQ_SNDHWM, messages) }
    public func setReceiveHighWaterMark(_ messages: Int32) throws(ZMQError) { try setOption(ZMQ_RCVHWM, messages) }
    /// ROUTER: fail sends to unknown peers with `hostUnreachable` instead of dropping them silently.
    public func setRouterMandatory(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_ROUTER_MANDATORY, Int32(on ? 1 : 0)) }
    /// Peers that send a larger message are disconnected by libzmq.
    public func setMaximumMessageSize(_ bytes: Int64) throws(ZMQError) { try setOption(ZMQ_MAXMSGSIZE, bytes) }
    public func setRoutingID(_ id: [UInt8]) throws(ZMQError) { try setOption(ZMQ_ROUTING_ID, bytes: id) }
    /// ROUTER: a peer reconnecting with a routing id already in use takes it over (instead of
    /// being ignored while the old connection lingers).
    public func setRouterHandover(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_ROUTER_HANDOVER, Int32(on ? 1 : 0)) }
    public func setReceiveTimeout(milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_RCVTIMEO, milliseconds) }
    public func setSendTimeout(milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_SNDTIMEO, milliseconds) }
    /// Queue messages only to completed connections (DEALER: no message waits for a peer that never came).
    public func setImmediate(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_IMMEDIATE, Int32(on ? 1 : 0)) }
    public func setReconnectInterval(milliseconds: Int32, maximum: Int32) throws(ZMQError) {
        try setOption(ZMQ_RECONNECT_IVL, milliseconds)
        try setOption(ZMQ_RECONNECT_IVL_MAX, maximum)
    }
    /// ZMTP-level heartbeats (PING/PONG) that drop dead TCP connections.
    public func setTransportHeartbeat(interval: Int32, timeout: Int32, ttl: Int32) throws(ZMQError) {
        try setOption(ZMQ_HEARTBEAT_IVL, interval)
        try setOption(ZMQ_HEARTBEAT_TIMEOUT, timeout)
        try setOption(ZMQ_HEARTBEAT_TTL, ttl)
    }

    // MARK: Messages

    /// Sends every frame as one multipart message.
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws(ZMQError) {
        precondition(!frames.isEmpty, "a message has at least one frame")
        let base: Int32 = dontWait ? ZMQ_DONTWAIT : 0
        for (i, frame) in frames.enumerated() {
            let flags = i == frames.count - 1 ? base : base | ZMQ_SNDMORE
            _ = try check("zmq_send") {
                frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            }
        }
    }

    /// Receives one multipart message; nil when `dontWait` and nothing is queued, or on timeout.
    public func receive(dontWait: Bool = false) throws(ZMQError) -> [[UInt8]]? {
        try receiveMessage(dontWait: dontWait)?.frames
    }

    /// Receives one multipart message with the "User-Id" the ZAP handler gave its sender
    /// (nil without authentication).
    public func receiveMessage(dontWait: Bool = false) throws(ZMQError) -> (frames: [[UInt8]], userID: String?)? {
        var frames: [[UInt8]] = []
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        while true {
            let rc = zmq_msg_recv(&message, handle, dontWait && frames.isEmpty ? ZMQ_DONTWAIT : 0)
            if rc < 0 {
                let number = zmq_errno()
                if number == EINTR { continue }
                if number == EAGAIN && frames.isEmpty { return nil }
                throw ZMQError(operation: "zmq_msg_recv", errno: number)
            }
            let size = zmq_msg_size(&message)
            if size == 0 {
                frames.append([])
            } else {
                let data = zmq_msg_data(&message)!.assumingMemoryBound(to: UInt8.self)
                frames.append(Array(UnsafeBufferPointer(start: data, count: size)))
            }
            if zmq_msg_more(&message) == 0 {
                // Metadata is attached to frames that came from the peer (not a ROUTER's id frame).
                let user = zmq_msg_gets(&message, "User-Id").map { String(cString: $0) }
                return (frames, user.flatMap { $0.isEmpty ? nil : $0 })
            }
        }
    }
}
