import Foundation
import ChildProcess

/// A host of the test's own: a network namespace joined to this one by a veth pair, with
/// addresses from 198.18.0.0/15 (set aside for network tests, RFC 2544) that the test assigns
/// and removes. Traffic between a process in the namespace and one here crosses a real
/// interface other than loopback, and goes nowhere else.
public final class TestNetwork: @unchecked Sendable {
    public let namespace: String
    /// This side's address (on the host end of the pair), and the namespace's.
    public let hostAddress: String
    public let namespaceAddress: String
    private let hostLink: String

    public struct Failure: Error, CustomStringConvertible { public let description: String }

    public init() throws {
        let tag = String(UInt32.random(in: 0...0xFFFFF), radix: 16)
        namespace = "ovs-test-\(tag)"
        hostLink = "ovsh\(tag)"
        let peerLink = "ovsn\(tag)"
        let block = Int.random(in: 0...255), slot = Int.random(in: 0...63) * 4
        hostAddress = "198.18.\(block).\(slot + 1)"
        namespaceAddress = "198.18.\(block).\(slot + 2)"
        let steps: [[String]] = [
            ["netns", "add", namespace],
            ["link", "add", hostLink, "type", "veth", "peer", "name", peerLink],
            ["link", "set", peerLink, "netns", namespace],
            ["addr", "add", "\(hostAddress)/30", "dev", hostLink],
            ["link", "set", hostLink, "up"],
            ["-n", namespace, "addr", "add", "\(namespaceAddress)/30", "dev", peerLink],
            ["-n", namespace, "link", "set", peerLink, "up"],
            ["-n", namespace, "link", "set", "lo", "up"],
        ]
        for step in steps {
            let (status, output) = try ChildProcess.run(["/usr/sbin/ip"] + step)
            guard status == 0 else {
                remove()
                throw Failure(description: "ip \(step.joined(separator: " ")) failed: \(output) (network tests need root and iproute2)")
            }
        }
    }

    /// The command that runs `arguments` inside the namespace.
    public func inside(_ arguments: [String]) -> [String] { ["/usr/sbin/ip", "netns", "exec", namespace] + arguments }

    /// The processes running in the namespace.
    public func processes() throws -> [Int32] {
        let (_, output) = try ChildProcess.run(["/usr/sbin/ip", "netns", "pids", namespace])
        return output.split(separator: "\n").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Removes the namespace; its end of the pair goes with it, and so does this end.
    public func remove() {
        _ = try? ChildProcess.run(["/usr/sbin/ip", "link", "del", hostLink])
        _ = try? ChildProcess.run(["/usr/sbin/ip", "netns", "del", namespace])
    }

    deinit { remove() }
}
