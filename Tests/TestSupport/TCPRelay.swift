import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP forwarder that records every byte it passes in both directions: what anyone on the
/// network path between two peers would capture.
public final class TCPRelay: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    private var stopped = false

    /// Listens on `host` (an IPv4 address) and forwards each connection to `target`:`targetPort`.
    public init(host: String, target: String, targetPort: Int) throws {
        (listener, port) = try Self.listen(on: host)
        let thread = Thread { [self] in acceptLoop(target: target, targetPort: targetPort) }
        thread.start()
    }

    deinit { stop() }

    public func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    /// Everything relayed so far, both directions interleaved.
    public var captured: [UInt8] { lock.withLock { bytes } }

    public func contains(_ text: String) -> Bool {
        let needle = Array(text.utf8), haystack = captured
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<i + needle.count]) == needle { return true }
        }
        return false
    }

    private func acceptLoop(target: String, targetPort: Int) {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { if lock.withLock({ stopped }) { return }; continue }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.address(target, targetPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { close(client); close(server); continue }
            let pump = Thread { [self] in forward(client, server) }
            pump.start()
        }
    }

    private func forward(_ a: Int32, _ b: Int32) {
        defer { close(a); close(b) }
        var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !lock.withLock({ stopped }) {
            guard poll(&fds, 2, 200) >= 0 else { if errno == EINTR { continue }; return }
            for (i, from) in [a, b].enumerated() where fds[i].revents != 0 {
                let n = read(from, &buffer, buffer.count)
                if n <= 0 { return }
                lock.withLock { bytes.append(contentsOf: buffer[0..<n]) }
                let to = from == a ? b : a
                var sent = 0
                while sent < n {
                    let m = buffer[sent..<n].withUnsafeBytes { write(to, $0.baseAddress, $0.count) }
                    if m <= 0 { return }
                    sent += m
                }
            }
        }
    }

    /// A TCP socket listening on `host` (IPv4) at a port the kernel picks, and that port.
    static func listen(on host: String) throws -> (fd: Int32, port: Int) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.address(host, 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        guard bound == 0, Glibc.listen(listener, 64) == 0 else {
            close(listener)
            throw RelayError(description: "relay cannot listen on \(host): \(String(cString: strerror(errno)))")
        }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        return (listener, Int(UInt16(bigEndian: address.sin_port)))
    }

    static func address(_ host: String, _ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = UInt16(port).bigEndian
        return address
    }

}

public struct RelayError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}
