import Foundation
import ChildProcess
#if canImport(Glibc)
import Glibc
#endif

/// Hosts of the test's own on a network of the test's own: each host a network namespace,
/// joined by a veth pair to a bridge in a namespace of its own (the switch), with an address
/// from a /24 of 198.19.0.0/16 (part of 198.18.0.0/15, set aside for network tests, RFC 2544).
/// The test process itself is one more host (`observer`): its end of a pair is the only link
/// in this namespace, so that it can reach the others and query PostgreSQL; nothing else of
/// this machine's network is touched.
///
/// Faults are nftables rules in a host's own namespace (Debian's `nft`): `cut` drops
/// everything between two hosts, both ways, until `heal`; `lose` drops a share of a host's
/// packets at random (`numgen random`). This kernel has no `tc netem`; latency comes from
/// `DelayingRelay`, a forwarder of the test's own.
public final class TestHosts: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    public struct Host: Sendable {
        public let name: String
        public let namespace: String
        public let address: String
    }

    public let observer: Host
    public private(set) var hosts: [String: Host] = [:]
    private let tag: String
    private let subnet: String
    private let switchNamespace: String
    private var links: [String] = []

    /// Makes the switch, the observer's link, and one host per name.
    public init(_ names: [String]) throws {
        tag = String(UInt32.random(in: 0...0xFFFF), radix: 16)
        subnet = "198.19.\(Int.random(in: 1...254))"
        switchNamespace = "ovs-sw-\(tag)"
        observer = Host(name: "observer", namespace: "", address: "\(subnet).254")
        do {
            try ip(["netns", "add", switchNamespace])
            try ip(["-n", switchNamespace, "link", "add", "br0", "type", "bridge"])
            try ip(["-n", switchNamespace, "link", "set", "br0", "up"])
            // The observer: one end here, the other on the switch.
            let here = "ovso\(tag)"
            try ip(["link", "add", here, "type", "veth", "peer", "name", "ovsq\(tag)"])
            links.append(here)
            try plug("ovsq\(tag)")
            try ip(["addr", "add", "\(observer.address)/24", "dev", here])
            try ip(["link", "set", here, "up"])
            for (index, name) in names.enumerated() {
                let host = Host(name: name, namespace: "ovs-\(name)-\(tag)", address: "\(subnet).\(index + 1)")
                try ip(["netns", "add", host.namespace])
                try ip(["link", "add", "ovsp\(tag)\(index)", "type", "veth", "peer", "name", "ovsh\(tag)\(index)"])
                try ip(["link", "set", "ovsh\(tag)\(index)", "netns", host.namespace])
                try plug("ovsp\(tag)\(index)")
                try ip(["-n", host.namespace, "addr", "add", "\(host.address)/24", "dev", "ovsh\(tag)\(index)"])
                try ip(["-n", host.namespace, "link", "set", "ovsh\(tag)\(index)", "up"])
                try ip(["-n", host.namespace, "link", "set", "lo", "up"])
                try nft(host, ruleset: """
                    table inet oversight_test {
                        chain input { type filter hook input priority 0; policy accept; }
                        chain output { type filter hook output priority 0; policy accept; }
                    }
                    """)
                hosts[name] = host
            }
        } catch {
            remove()
            throw error
        }
    }

    public subscript(name: String) -> Host { hosts[name]! }

    /// The command that runs `arguments` on `host`.
    public func on(_ host: Host, _ arguments: [String]) -> [String] {
        ["/usr/sbin/ip", "netns", "exec", host.namespace] + arguments
    }

    /// The launcher that runs the Oversight binary on `host` (see `RunningProcess`).
    public func launcher(_ host: Host) -> [String] { ["/usr/sbin/ip", "netns", "exec", host.namespace] }

    /// Drops every packet between `a` and `b`, both ways (rules on `a`: its input and output),
    /// until `heal(a)`. Established connections stall; nothing tells either side.
    public func cut(_ a: Host, from b: Host) throws {
        try nft(a, ["add", "rule", "inet", "oversight_test", "output", "ip", "daddr", b.address, "counter", "drop"])
        try nft(a, ["add", "rule", "inet", "oversight_test", "input", "ip", "saddr", b.address, "counter", "drop"])
    }

    /// Drops `percent` of `host`'s packets, each way, at random.
    public func lose(_ host: Host, percent: Int) throws {
        for chain in ["output", "input"] {
            try nft(host, ["add", "rule", "inet", "oversight_test", chain, "numgen", "random", "mod", "100", "<", String(percent), "counter", "drop"])
        }
    }

    /// Removes every rule of `host`'s.
    public func heal(_ host: Host) throws {
        for chain in ["output", "input"] { try nft(host, ["flush", "chain", "inet", "oversight_test", chain]) }
    }

    /// The packets `host`'s rules dropped so far (their counters), to show a fault was real.
    public func ruleset(_ host: Host) -> String {
        (try? ChildProcess.run(on(host, ["/usr/sbin/nft", "list", "ruleset"])).1) ?? ""
    }

    /// Ends every process left in the hosts, then removes them, the switch and the observer's link.
    public func remove() {
        for host in hosts.values {
            if let (_, pids) = try? ChildProcess.run(["/usr/sbin/ip", "netns", "pids", host.namespace]) {
                for pid in pids.split(separator: "\n").compactMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }) { kill(pid, SIGKILL) }
            }
            _ = try? ChildProcess.run(["/usr/sbin/ip", "netns", "del", host.namespace])
        }
        for link in links { _ = try? ChildProcess.run(["/usr/sbin/ip", "link", "del", link]) }
        _ = try? ChildProcess.run(["/usr/sbin/ip", "netns", "del", switchNamespace])
        hosts = [:]
        links = []
    }

    deinit { remove() }

    private func plug(_ link: String) throws {
        try ip(["link", "set", link, "netns", switchNamespace])
        try ip(["-n", switchNamespace, "link", "set", link, "master", "br0"])
        try ip(["-n", switchNamespace, "link", "set", link, "up"])
    }

    private func ip(_ arguments: [String]) throws {
        let (status, output) = try ChildProcess.run(["/usr/sbin/ip"] + arguments)
        guard status == 0 else {
            throw Failure(description: "ip \(arguments.joined(separator: " ")) failed: \(output) (network tests need root and iproute2)")
        }
    }

    private func nft(_ host: Host, _ arguments: [String]) throws {
        let (status, output) = try ChildProcess.run(on(host, ["/usr/sbin/nft"] + arguments))
        guard status == 0 else { throw Failure(description: "nft \(arguments.joined(separator: " ")) on \(host.name) failed: \(output) (install nftables)") }
    }

    private func nft(_ host: Host, ruleset: String) throws {
        let file = NSTemporaryDirectory() + "oversight-nft-\(tag)-\(host.name).nft"
        try ruleset.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try nft(host, ["-f", file])
    }
}
