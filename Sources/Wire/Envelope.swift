/// Every Oversight message is `[OVS2][command][payload…]` (after the ROUTER's routing-id frame).
public enum Envelope {
    public static let version = "OVS2"
    public static let protocolFrame: [UInt8] = Array(version.utf8)
    /// Earlier versions a peer may still speak: it is told which version it needs.
    public static let olderVersions: [[UInt8]] = [Array("OVS1".utf8)]
    /// Largest message a peer may send; libzmq disconnects peers that send more.
    public static let maximumMessageSize = 64 * 1024 * 1024
    /// Largest single deployment record on the wire (a client sends a larger line as its
    /// length, SHA-256 and first `rejectedPrefixSize` bytes, to be kept as a rejection).
    public static let maximumRecordSize = 16 * 1024 * 1024
    /// How much of a line too large to keep whole is kept.
    public static let rejectedPrefixSize = 64 * 1024
    /// Largest criteria pack document.
    public static let maximumPackSize = 4 * 1024 * 1024

    /// Checks the protocol frame and returns the command byte and the payload frames.
    public static func open(_ frames: ArraySlice<[UInt8]>) throws(WireError) -> (command: UInt8, payload: ArraySlice<[UInt8]>) {
        guard let first = frames.first else { throw WireError(.missingFrame, "empty message") }
        guard first == protocolFrame else {
            if olderVersions.contains(first) {
                throw WireError(.oldProtocol, "this peer speaks \(String(decoding: first, as: UTF8.self)); the coordinator speaks \(version) only: upgrade the client or worker to one that speaks \(version)")
            }
            let shown = String(decoding: first.prefix(8), as: UTF8.self)
            throw WireError(.wrongProtocol, "expected protocol frame \(version), got \"\(shown)\" (\(first.count) bytes)")
        }
        let rest = frames.dropFirst()
        guard let command = rest.first else { throw WireError(.missingFrame, "no command frame") }
        guard command.count == 1 else { throw WireError(.invalidValue, "command frame must be 1 byte, got \(command.count)") }
        return (command[0], rest.dropFirst())
    }

    static func frames(_ command: UInt8, _ payload: [UInt8]? = nil) -> [[UInt8]] {
        if let payload { return [protocolFrame, [command], payload] }
        return [protocolFrame, [command]]
    }

    static func body(_ payload: ArraySlice<[UInt8]>, _ what: String) throws(WireError) -> ByteReader {
        guard payload.count == 1, let body = payload.first else {
            throw WireError(.missingFrame, "\(what) takes exactly one payload frame, got \(payload.count)")
        }
        return ByteReader(body)
    }

    static func empty(_ payload: ArraySlice<[UInt8]>, _ what: String) throws(WireError) {
        guard payload.isEmpty else { throw WireError(.trailingBytes, "\(what) takes no payload, got \(payload.count) frames") }
    }
}
