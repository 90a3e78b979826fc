import Crypto

/// The chain of SHA-256 over every line a batch received, in order, whatever the chunks were:
/// `d₀ = SHA-256("")`, `dᵢ = SHA-256(dᵢ₋₁ ‖ line ‖ kind ‖ length ‖ bytes)` (line and length as
/// 8 bytes big-endian, kind 1 byte: 0 a record's JSON, 1 a line the client could not read, 2 a
/// line too large to send, whose bytes here are its 32-byte SHA-256). A resumed submission
/// recomputes it over its own file: the same chain proves the same input.
public struct InputDigest: Sendable, Hashable {
    public private(set) var lastLine: Int64
    public private(set) var sha256: [UInt8]

    public static let empty = InputDigest(lastLine: 0, sha256: AuditHash.sha256([]))

    public init(lastLine: Int64, sha256: [UInt8]) {
        self.lastLine = lastLine
        self.sha256 = sha256
    }

    public mutating func append(line: Int64, kind: UInt8, bytes: [UInt8]) {
        var hasher = SHA256()
        sha256.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: UInt64(bitPattern: line).bigEndian) { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: kind) { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: UInt64(bytes.count).bigEndian) { hasher.update(bufferPointer: $0) }
        bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        sha256 = hasher.finalize().withUnsafeBytes { Array($0) }
        lastLine = max(lastLine, line)
    }
}
