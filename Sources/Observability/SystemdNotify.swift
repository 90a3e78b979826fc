import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (sd_notify(3)), for units of `Type=notify`: a datagram of
/// `KEY=VALUE` lines to the Unix socket named by `NOTIFY_SOCKET` (a path, or `@name` in the
/// abstract namespace). Without `NOTIFY_SOCKET` (not started by systemd) nothing is sent.
public enum SystemdNotify {
    /// The service is up (`READY=1`), with a line systemd shows in `systemctl status`.
    public static func ready(status: String) { send("READY=1\nSTATUS=\(status)") }

    /// A new status line, readiness unchanged.
    public static func status(_ status: String) { send("STATUS=\(status)") }

    /// The service is stopping (`STOPPING=1`): systemd waits for it to exit.
    public static func stopping(status: String) { send("STOPPING=1\nSTATUS=\(status)") }

    /// Sends `state`; false if there is no socket to send to or the send failed.
    @discardableResult
    public static func send(_ state: String, socketPath: String? = nil) -> Bool {
        guard let socketPath = socketPath ?? ProcessInfo.processInfo.environment["NOTIFY_SOCKET"],
              !socketPath.isEmpty, socketPath.utf8.count < 108 else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.enumerated() { raw[i] = byte }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count + (path.first == 0 ? 0 : 1))
        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sockaddrPointer, length) }
            }
        }
        return sent == bytes.count
    }
}
