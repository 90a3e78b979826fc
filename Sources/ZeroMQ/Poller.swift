import CZeroMQ

/// Waits on several sockets and plain file descriptors at once (zmq_poll).
/// Lives on the thread that owns its sockets.
public struct ZMQPoller {
    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// Registers a socket for readability; returns its index in `poll`'s result.
    @discardableResult
    public mutating func add(_ socket: ZMQSocket) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: -1, events: Int16(ZMQ_POLLIN), revents: 0))
        return items.count - 1
    }

    /// Registers a file descriptor (e.g. a `Wakeup`) for readability.
    @discardableResult
    public mutating func add(fileDescriptor: Int32) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: fileDescriptor, events: Int16(ZMQ_POLLIN), revents: 0))
        return items.count - 1
    }

    /// Waits up to `timeout` milliseconds (-1: forever) and returns which items are readable.
    public mutating func poll(timeout: Int) throws(ZMQError) -> [Bool] {
        let count = Int32(items.count)
        let rc = items.withUnsafeMutableBufferPointer { buffer in
            zmq_poll(buffer.baseAddress, count, timeout)
        }
        if rc < 0 {
            let number = zmq_errno()
            if number == EINTR { return Array(repeating: false, count: items.count) }
            throw ZMQError(operation: "zmq_poll", errno: number)
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }
}
