import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// systemd's side of sd_notify(3), for tests: a Unix datagram socket that a process started
/// with `NOTIFY_SOCKET` set to `path` (or to `@name`, abstract) reports its state to.
public final class NotifyListener: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private var received: [String] = []

    /// `abstract`: a name in the abstract namespace (`@…`) instead of a file.
    public init(abstract: Bool = false) throws {
        let name = "ovs-notify-\(UUID().uuidString.prefix(8))"
        path = abstract ? "@" + name : NSTemporaryDirectory() + name + ".sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard fd >= 0, bound == 0 else { throw RelayError(description: "cannot bind a notify socket at \(path): \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        if !path.hasPrefix("@") { unlink(path) }
    }

    /// Every datagram so far, oldest first.
    public var messages: [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
        return received
    }

    /// Waits until a datagram holds the line `line` (`READY=1`, say); returns that datagram.
    @discardableResult
    public func waitFor(_ line: String, within seconds: Double = 60) throws -> String {
        try eventually("a notification with \(line) at \(path)", within: seconds, { self.messages.first { $0.split(separator: "\n").contains(Substring(line)) } }, until: { $0 != nil })!
    }
}
