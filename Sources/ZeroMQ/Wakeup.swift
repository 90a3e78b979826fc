import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// An eventfd that any thread may signal to wake a poll loop owned by another thread:
/// the "pipe" half of czmq's actor (a thread plus a pipe), for queues of Swift values.
public final class Wakeup: @unchecked Sendable {
    public let fileDescriptor: Int32

    public init() {
        let fd = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        precondition(fd >= 0, "eventfd failed: the process is out of file descriptors")
        fileDescriptor = fd
    }

    deinit { Glibc.close(fileDescriptor) }

    /// Wakes the poller; cheap, thread-safe, coalescing.
    public func signal() {
        var one: UInt64 = 1
        while Glibc.write(fileDescriptor, &one, 8) < 0 && errno == EINTR {}
    }

    /// Clears pending signals; called by the owner after it was woken.
    public func drain() {
        var value: UInt64 = 0
        while Glibc.read(fileDescriptor, &value, 8) < 0 && errno == EINTR {}
    }
}
