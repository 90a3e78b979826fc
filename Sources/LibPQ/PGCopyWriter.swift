/// Encodes rows in COPY text format and streams them to the server in 256 KiB chunks.
public struct PGCopyWriter {
    let connection: PGConnection
    var buffer: [UInt8] = []
    var needsTab = false
    public private(set) var rows = 0

    init(connection: PGConnection) {
        self.connection = connection
        buffer.reserveCapacity(Self.chunk + 4096)
    }

    static let chunk = 256 * 1024

    public mutating func add(_ value: String?) { add(utf8: value.map { Array($0.utf8) }) }

    /// Adds a text column from UTF-8 bytes (escaping backslash, tab, newline, carriage return).
    public mutating func add(utf8 value: [UInt8]?) {
        separator()
        guard let value else { buffer.append(contentsOf: [0x5C, UInt8(ascii: "N")]); return }
        // Runs of bytes that need no escape are copied at once (results are mostly such runs),
        // found eight bytes at a time.
        value.withUnsafeBufferPointer { bytes in
            var start = 0
            var i = 0
            while i < bytes.count {
                if i + 8 <= bytes.count, !Self.mayNeedEscape(UnsafeRawPointer(bytes.baseAddress! + i).loadUnaligned(as: UInt64.self)) {
                    i += 8
                    continue
                }
                let end = min(i + 8, bytes.count)
                while i < end {
                    let byte = bytes[i]
                    if byte == 0x5C || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
                        buffer.append(0x5C)
                        buffer.append(byte == 0x5C ? 0x5C : byte == 0x09 ? UInt8(ascii: "t") : byte == 0x0A ? UInt8(ascii: "n") : UInt8(ascii: "r"))
                        start = i + 1
                    }
                    i += 1
                }
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        }
    }

    /// Whether any of the eight bytes may be a backslash, tab, newline or carriage return: a
    /// byte equal to one of them makes its lane zero in `word ^ pattern`, which the classic
    /// has-zero-byte test finds (it may also flag a lane next to a true one: then the bytes are
    /// looked at one by one, which is always correct).
    @inline(__always)
    static func mayNeedEscape(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
        return hasZero(word ^ (0x5C &* ones)) | hasZero(word ^ (0x09 &* ones)) | hasZero(word ^ (0x0A &* ones))
            | hasZero(word ^ (0x0D &* ones)) != 0
    }

    public mutating func add(_ value: Int64) {
        separator()
        buffer.append(contentsOf: String(value).utf8)
    }

    public mutating func add(_ value: Int) { add(Int64(value)) }

    public mutating func add(_ value: Bool?) {
        separator()
        guard let value else { buffer.append(contentsOf: [0x5C, UInt8(ascii: "N")]); return }
        buffer.append(value ? UInt8(ascii: "t") : UInt8(ascii: "f"))
    }

    /// Adds a bytea column (hex format; the backslash itself escaped for COPY).
    public mutating func add(bytea value: [UInt8]) {
        separator()
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        buffer.append(contentsOf: [0x5C, 0x5C, UInt8(ascii: "x")])
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: value.count * 2))
        buffer.withUnsafeMutableBufferPointer { out in
            for (i, byte) in value.enumerated() {
                out[start + 2 * i] = digits[Int(byte >> 4)]
                out[start + 2 * i + 1] = digits[Int(byte & 0xF)]
            }
        }
    }

    /// Ends the current row; sends a chunk when the buffer is full.
    public mutating func endRow() throws(PQError) {
        buffer.append(0x0A)
        needsTab = false
        rows += 1
        if buffer.count >= Self.chunk { try flush() }
    }

    mutating func flush() throws(PQError) {
        guard !buffer.isEmpty else { return }
        try connection.putCopyData(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    private mutating func separator() {
        if needsTab { buffer.append(0x09) }
        needsTab = true
    }
}
