import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A libzmq call failed: which call, and libzmq's errno and message.
public struct ZMQError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, RawRepresentable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        /// Would block (non-blocking send or receive), or a send/receive timeout passed.
        public static let wouldBlock = Code(rawValue: EAGAIN)
        /// ROUTER_MANDATORY: no peer with that routing id is connected.
        public static let hostUnreachable = Code(rawValue: EHOSTUNREACH)
        /// The context was terminated.
        public static let terminated = Code(rawValue: ETERM)
        public static let interrupted = Code(rawValue: EINTR)
        public static let invalidArgument = Code(rawValue: EINVAL)
        public static let addressInUse = Code(rawValue: EADDRINUSE)
    }

    public let code: Code
    public let operation: String
    public let message: String

    init(operation: String, errno number: Int32 = zmq_errno()) {
        code = Code(rawValue: number)
        self.operation = operation
        message = String(cString: zmq_strerror(number))
    }

    public var description: String { "\(operation): \(message)" }
}

/// Calls a libzmq function, retrying on EINTR, and throws on a negative result.
@inline(__always)
func check(_ operation: @autoclosure () -> String, _ call: () -> Int32) throws(ZMQError) -> Int32 {
    while true {
        let rc = call()
        if rc >= 0 { return rc }
        let number = zmq_errno()
        if number == EINTR { continue }
        throw ZMQError(operation: operation(), errno: number)
    }
}
