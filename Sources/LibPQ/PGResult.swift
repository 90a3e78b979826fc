import CLibPQ

/// The rows of a completed statement, read in text format. Owns its PGresult.
public final class PGResult {
    let handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQclear(handle) }

    public var rowCount: Int { Int(PQntuples(handle)) }
    public var columnCount: Int { Int(PQnfields(handle)) }
    /// Rows affected by INSERT/UPDATE/DELETE/COPY.
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }

    public func columnName(_ column: Int) -> String { String(cString: PQfname(handle, Int32(column))) }

    public func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(handle, Int32(row), Int32(column)) == 1 }

    public func string(_ row: Int, _ column: Int) -> String? {
        guard !isNull(row, column) else { return nil }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        let pointer = UnsafeRawPointer(PQgetvalue(handle, Int32(row), Int32(column))!).assumingMemoryBound(to: UInt8.self)
        return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    /// A text column's bytes exactly as the server sent them.
    public func textBytes(_ row: Int, _ column: Int) -> [UInt8]? {
        guard !isNull(row, column) else { return nil }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        let pointer = UnsafeRawPointer(PQgetvalue(handle, Int32(row), Int32(column))!).assumingMemoryBound(to: UInt8.self)
        return Array(UnsafeBufferPointer(start: pointer, count: length))
    }

    public func int(_ row: Int, _ column: Int) -> Int? { string(row, column).flatMap { Int($0) } }
    public func int64(_ row: Int, _ column: Int) -> Int64? { string(row, column).flatMap { Int64($0) } }
    public func double(_ row: Int, _ column: Int) -> Double? { string(row, column).flatMap { Double($0) } }
    public func bool(_ row: Int, _ column: Int) -> Bool? { string(row, column).map { $0 == "t" } }

    /// A bytea column (text format `\x…` hex).
    public func bytes(_ row: Int, _ column: Int) -> [UInt8]? {
        guard let text = string(row, column) else { return nil }
        let hex = Array(text.utf8.dropFirst(2))
        guard text.hasPrefix("\\x"), hex.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(hex.count / 2)
        var i = 0
        while i < hex.count {
            guard let hi = hexValue(hex[i]), let lo = hexValue(hex[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
