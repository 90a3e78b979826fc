/// Why a frame could not be decoded. Decoding never traps: any byte string either decodes or
/// throws one of these.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case wrongProtocol = "wrong protocol"
        case oldProtocol = "old protocol version"
        case unknownCommand = "unknown command"
        case truncated
        case trailingBytes = "trailing bytes"
        case invalidValue = "invalid value"
        case tooLarge = "too large"
        case missingFrame = "missing frame"
    }
    public let code: Code
    public let detail: String
    public init(_ code: Code, _ detail: String) { self.code = code; self.detail = detail }
    public var description: String { "\(code.rawValue): \(detail)" }
}

/// Little-endian binary writer for payload frames.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []
    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func raw(_ v: [UInt8]) { bytes.append(contentsOf: v) }
    /// A string of at most 65,535 UTF-8 bytes (longer strings are cut at a character boundary).
    public mutating func string(_ s: String) {
        // NUL cannot be stored in a text column, so the reader refuses it: never send one.
        var utf8 = Array(s.utf8)
        if utf8.contains(0) {
            utf8 = Array(String(String.UnicodeScalarView(s.unicodeScalars.map { $0 == "\u{0}" ? "\u{FFFD}" : $0 })).utf8)
        }
        if utf8.count > Int(UInt16.max) {
            var cut = Int(UInt16.max)
            while cut > 0 && (utf8[cut] & 0xC0) == 0x80 { cut -= 1 }
            utf8 = Array(utf8[..<cut])
        }
        u16(UInt16(utf8.count))
        raw(utf8)
    }
    /// A byte string of at most 4 GiB, length-prefixed.
    public mutating func blob(_ b: [UInt8]) { u32(UInt32(b.count)); raw(b) }
}

/// Bounds-checked little-endian reader; every read throws instead of trapping.
public struct ByteReader {
    let bytes: [UInt8]
    var offset = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }

    mutating func take(_ n: Int, _ what: String) throws(WireError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw WireError(.truncated, "\(what) needs \(n) bytes, \(remaining) left") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    public mutating func u8(_ what: String) throws(WireError) -> UInt8 { try take(1, what).first! }
    public mutating func u16(_ what: String) throws(WireError) -> UInt16 { UInt16(try integer(2, what)) }
    public mutating func u32(_ what: String) throws(WireError) -> UInt32 { UInt32(try integer(4, what)) }
    public mutating func u64(_ what: String) throws(WireError) -> UInt64 { try integer(8, what) }

    private mutating func integer(_ size: Int, _ what: String) throws(WireError) -> UInt64 {
        let slice = try take(size, what)
        var v: UInt64 = 0
        for (i, b) in slice.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    public mutating func raw(_ n: Int, _ what: String) throws(WireError) -> [UInt8] { Array(try take(n, what)) }
    public mutating func sha256(_ what: String) throws(WireError) -> [UInt8] { try raw(32, what) }

    public mutating func string(_ what: String) throws(WireError) -> String {
        let n = Int(try u16(what))
        let slice = try take(n, what)
        guard let s = String(validating: slice, as: UTF8.self) else { throw WireError(.invalidValue, "\(what) is not valid UTF-8") }
        // Short strings are names and reasons: they end up in text columns, which cannot hold NUL.
        guard !slice.contains(0) else { throw WireError(.invalidValue, "\(what) contains a NUL character") }
        return s
    }

    public mutating func blob(_ what: String, limit: Int) throws(WireError) -> [UInt8] {
        let n = Int(try u32(what))
        guard n <= limit else { throw WireError(.tooLarge, "\(what) of \(n) bytes exceeds \(limit)") }
        return Array(try take(n, what))
    }

    /// Count prefix for a list, checked against what the remaining bytes could possibly hold.
    public mutating func count(_ what: String, minimumElementSize: Int) throws(WireError) -> Int {
        let n = Int(try u32(what))
        guard n <= remaining / max(minimumElementSize, 1) else {
            throw WireError(.truncated, "\(what) claims \(n) elements, only \(remaining) bytes left")
        }
        return n
    }

    public func finish(_ what: String) throws(WireError) {
        guard remaining == 0 else { throw WireError(.trailingBytes, "\(remaining) unexpected bytes after \(what)") }
    }
}
