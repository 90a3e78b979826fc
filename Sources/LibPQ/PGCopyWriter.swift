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
        for byte in value {
            switch byte {
            case 0x5C: buffer.append(0x5C); buffer.append(0x5C)
            case 0x09: buffer.append(0x5C); buffer.append(UInt8(ascii: "t"))
            case 0x0A: buffer.append(0x5C); buffer.append(UInt8(ascii: "n"))
            case 0x0D: buffer.append(0x5C); buffer.append(UInt8(ascii: "r"))
            default: buffer.append(byte)
            }
        }
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
        for byte in value { buffer.append(digits[Int(byte >> 4)]); buffer.append(digits[Int(byte & 0xF)]) }
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
