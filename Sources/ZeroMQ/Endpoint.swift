import Foundation

/// What a ZeroMQ endpoint string says about where traffic goes.
public enum Endpoint {
    /// Whether traffic to or from `endpoint` stays on this machine: `ipc://`, `inproc://`, or TCP
    /// on 127.0.0.0/8, `localhost` or `::1`. Anything else (`tcp://*`, a name, an interface
    /// address) may cross a network.
    public static func isLoopback(_ endpoint: String) -> Bool {
        let trimmed = endpoint.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("ipc://") || trimmed.hasPrefix("inproc://") { return true }
        guard trimmed.hasPrefix("tcp://") else { return false }
        var address = Substring(trimmed.dropFirst("tcp://".count))
        // "source;destination" (connect from a given interface): the destination decides.
        if let semicolon = address.lastIndex(of: ";") { address = address[address.index(after: semicolon)...] }
        let host: Substring
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]") else { return false }
            host = address[address.index(after: address.startIndex)..<close]
        } else {
            host = address.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        }
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}
