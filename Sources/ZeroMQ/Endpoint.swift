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

    /// A ZeroMQ endpoint from what a user typed: `tcp://…`, `ipc://…` and `inproc://…` as they
    /// are, `HOST:PORT` as `tcp://HOST:PORT`; several may be comma-separated. Anything else (an
    /// `http://` address, a host without a port) is refused with the form expected.
    public static func normalised(_ endpoints: String, option: String) throws(EndpointError) -> String {
        try endpoints.split(separator: ",").map { part throws(EndpointError) -> String in
            let given = part.trimmingCharacters(in: .whitespaces)
            if given.hasPrefix("tcp://") || given.hasPrefix("ipc://") || given.hasPrefix("inproc://") { return given }
            if given.contains("://") {
                throw EndpointError(description: "\(option) \"\(given)\" is not a ZeroMQ endpoint: give tcp://HOST:PORT (or HOST:PORT), e.g. tcp://coordinator.example:5556")
            }
            let port = given.split(separator: ":").last.flatMap { UInt16($0) }
            guard given.contains(":"), port != nil, !given.hasPrefix(":") else {
                throw EndpointError(description: "\(option) \"\(given)\" has no port: give tcp://HOST:PORT (or HOST:PORT), e.g. 127.0.0.1:5556")
            }
            return "tcp://" + given
        }.joined(separator: ",")
    }
}

/// An endpoint a user gave that is not one; says the form expected.
public struct EndpointError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

