/// Encodes rows in COPY's binary format (`COPY … FROM STDIN (FORMAT binary)`) and streams them
/// in 256 KiB chunks. Each field is its length and its bytes in the column type's binary form,
/// so the server neither scans text for escapes nor parses numbers and hex: for a worker's
/// result rows (kilobytes of JSON each) that scan was the server's largest cost in COPY.
/// Every `add` must match its column's type exactly (the server refuses anything else):
/// `int8`, `int4`, `int2`, `bool`, `uuid`, `bytea`, `text` and `text[]`.
public struct PGBinaryCopyWriter {
    let connection: PGConnection
    var buffer: [UInt8] = []
    let fields: Int
    var added = 0
    public private(set) var rows = 0

    init(connection: PGConnection, fields: Int) {
        self.connection = connection
        self.fields = fields
        buffer.reserveCapacity(PGCopyWriter.chunk + 4096)
        // Signature, flags (no OIDs), header extension length.
        buffer.append(contentsOf: Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00])
        append(Int32(0)); append(Int32(0))
        startRow()
    }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
    }

    private mutating func startRow() { append(Int16(fields)) }

    private mutating func field(length: Int) {
        precondition(added < fields, "more fields than the COPY names")
        added += 1
        append(Int32(length))
    }

    public mutating func addNull() { field(length: -1) }

    public mutating func add(int8 value: Int64) { field(length: 8); append(value) }
    public mutating func add(int4 value: Int32) { field(length: 4); append(value) }
    public mutating func add(int2 value: Int16) { field(length: 2); append(value) }
    public mutating func add(bool value: Bool?) {
        guard let value else { return addNull() }
        field(length: 1); buffer.append(value ? 1 : 0)
    }

    /// A uuid from its text form (8-4-4-4-12 hex digits).
    public mutating func add(uuid text: [UInt8]) {
        field(length: 16)
        var high: UInt8? = nil
        for c in text where c != UInt8(ascii: "-") {
            let nibble: UInt8 = c <= UInt8(ascii: "9") ? c &- UInt8(ascii: "0") : (c | 0x20) &- UInt8(ascii: "a") &+ 10
            if let h = high { buffer.append(h << 4 | nibble); high = nil } else { high = nibble }
        }
    }

    public mutating func add(bytea value: [UInt8]) { field(length: value.count); buffer.append(contentsOf: value) }

    /// A text column from UTF-8 bytes (which must hold no NUL: text cannot).
    public mutating func add(text value: [UInt8]?) {
        guard let value else { return addNull() }
        field(length: value.count); buffer.append(contentsOf: value)
    }

    public mutating func add(text value: String?) {
        guard let value else { return addNull() }
        var copy = value
        copy.withUTF8 { bytes in
            field(length: bytes.count)
            buffer.append(contentsOf: bytes)
        }
    }

    /// A one-dimensional text[] (an empty one has no dimensions). NUL bytes, which text cannot
    /// hold, are left out, as the text format's array literal leaves them out.
    public mutating func add(textArray items: [String]) {
        let start = buffer.count
        field(length: 0)
        append(Int32(items.isEmpty ? 0 : 1)); append(Int32(0)); append(Int32(25))  // ndim, has nulls, text's OID
        if !items.isEmpty { append(Int32(items.count)); append(Int32(1)) }            // length, lower bound
        for item in items {
            let bytes = item.utf8.filter { $0 != 0 }
            append(Int32(bytes.count)); buffer.append(contentsOf: bytes)
        }
        let length = Int32(buffer.count - start - 4).bigEndian
        withUnsafeBytes(of: length) { raw in for i in 0..<4 { buffer[start + i] = raw[i] } }
    }

    /// Ends the current row; sends a chunk when the buffer is full.
    public mutating func endRow() throws(PQError) {
        precondition(added == fields, "a COPY row has \(fields) fields, this one \(added)")
        added = 0
        rows += 1
        if buffer.count >= PGCopyWriter.chunk { try flush() }
        startRow()
    }

    /// Sends what is buffered; at the end, the trailer in place of the next row's field count.
    mutating func finish() throws(PQError) {
        buffer.removeLast(2)
        append(Int16(-1))
        try flush()
    }

    mutating func flush() throws(PQError) {
        guard !buffer.isEmpty else { return }
        try connection.putCopyData(buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}
