import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP forwarder that delays what it passes: each chunk it reads waits `base` plus a random
/// share of `jitter` milliseconds (seeded) before it is written on, which is latency where
/// the kernel has no `tc netem`. A byte stream cannot be reordered without breaking TCP, so
/// within a connection order is kept (a chunk never overtakes the one before it); across
/// connections, and between the two directions of one, every chunk's delay is drawn on its
/// own, so that messages arrive in another order than they were sent.
public final class DelayingRelay: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var stopped = false
    private var random: SplitMix64
    private let base: Int
    private let jitter: Int
    /// Chunks passed so far (both directions).
    public private(set) var chunks = 0

    /// Listens on `host` (an IPv4 address) and forwards each connection to `target`:`targetPort`.
    public init(host: String, target: String, targetPort: Int, baseMilliseconds: Int, jitterMilliseconds: Int, seed: UInt64) throws {
        base = baseMilliseconds
        jitter = jitterMilliseconds
        random = SplitMix64(seed: seed)
        (listener, port) = try TCPRelay.listen(on: host)
        let thread = Thread { [self] in acceptLoop(target: target, targetPort: targetPort) }
        thread.start()
    }

    deinit { stop() }

    public func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func delay() -> Double {
        lock.withLock {
            chunks += 1
            return Double(base + Int(random.next() % UInt64(max(1, jitter + 1)))) / 1000
        }
    }

    private func acceptLoop(target: String, targetPort: Int) {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { if isStopped { return }; continue }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = TCPRelay.address(target, targetPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { close(client); close(server); continue }
            let link = Link(a: client, b: server)
            for (from, to) in [(client, server), (server, client)] {
                let pipe = Pipe()
                Thread { [self] in read(from, into: pipe, link) }.start()
                Thread { [self] in write(to, from: pipe, link) }.start()
            }
        }
    }

    /// Both sockets of one relayed connection, closed once, when either direction ends.
    private final class Link: @unchecked Sendable {
        let a: Int32, b: Int32
        private let lock = NSLock()
        private var closed = false
        private var threadsDone = 0
        init(a: Int32, b: Int32) { self.a = a; self.b = b }
        /// Each of the link's four threads says so as it ends; the last closes both sockets.
        func threadEnded() {
            let last = lock.withLock { () -> Bool in threadsDone += 1; return threadsDone == 4 }
            if last { close(a); close(b) }
        }
        func end() {
            let first = lock.withLock { () -> Bool in defer { closed = true }; return !closed }
            guard first else { return }
            shutdown(a, Int32(SHUT_RDWR))
            shutdown(b, Int32(SHUT_RDWR))
        }
        var isEnded: Bool { lock.withLock { closed } }
    }

    /// Chunks read and not yet due, in order, each with the time it may be written.
    private final class Pipe: @unchecked Sendable {
        let condition = NSCondition()
        var queue: [(due: Date, bytes: [UInt8])] = []
        var ended = false
    }

    private func read(_ fd: Int32, into pipe: Pipe, _ link: Link) {
        defer { link.threadEnded() }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var lastDue = Date.distantPast
        while !isStopped {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            // In order within the direction: never due before the chunk ahead of it.
            let due = max(lastDue, Date().addingTimeInterval(delay()))
            lastDue = due
            pipe.condition.withLock {
                pipe.queue.append((due, Array(buffer[0..<n])))
                pipe.condition.signal()
            }
        }
        pipe.condition.withLock {
            pipe.ended = true
            pipe.condition.signal()
        }
    }

    private func write(_ fd: Int32, from pipe: Pipe, _ link: Link) {
        defer { link.end(); link.threadEnded() }
        while true {
            var next: (due: Date, bytes: [UInt8])?
            pipe.condition.withLock {
                while pipe.queue.isEmpty && !pipe.ended && !link.isEnded { _ = pipe.condition.wait(until: Date().addingTimeInterval(0.2)) }
                next = pipe.queue.isEmpty ? nil : pipe.queue.removeFirst()
            }
            guard let chunk = next, !isStopped else { return }
            let wait = chunk.due.timeIntervalSinceNow
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            var sent = 0
            while sent < chunk.bytes.count {
                let m = chunk.bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if m <= 0 { return }
                sent += m
            }
        }
    }
}
