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
        value(row, column).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A text column's bytes exactly as the server sent them.
    public func textBytes(_ row: Int, _ column: Int) -> [UInt8]? { value(row, column).map { Array($0) } }

    public func int(_ row: Int, _ column: Int) -> Int? { int64(row, column).map { Int($0) } }

    /// An integer column, read from the server's text without making a String (it is read for
    /// every row when jobs are read back and batches sealed).
    public func int64(_ row: Int, _ column: Int) -> Int64? {
        guard let text = value(row, column), !text.isEmpty else { return nil }
        let negative = text[0] == UInt8(ascii: "-")
        var magnitude: UInt64 = 0
        for byte in text[(negative ? 1 : 0)...] {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            magnitude = sum
        }
        guard text.count > (negative ? 1 : 0) else { return nil }
        if negative { return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// The value's bytes in place (valid while this result lives), or nil for NULL.
    private func value(_ row: Int, _ column: Int) -> UnsafeBufferPointer<UInt8>? {
        guard !isNull(row, column) else { return nil }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        let pointer = UnsafeRawPointer(PQgetvalue(handle, Int32(row), Int32(column))!).assumingMemoryBound(to: UInt8.self)
        return UnsafeBufferPointer(start: pointer, count: length)
    }
    public func double(_ row: Int, _ column: Int) -> Double? { string(row, column).flatMap { Double($0) } }
    public func bool(_ row: Int, _ column: Int) -> Bool? { string(row, column).map { $0 == "t" } }

    /// A bytea column (text format `\x…` hex).
    public func bytes(_ row: Int, _ column: Int) -> [UInt8]? {
        guard let text = value(row, column), text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x"),
              text.count % 2 == 0 else { return nil }
        let count = (text.count - 2) / 2
        var valid = true
        let out = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count {
                guard let hi = hexValue(text[2 + 2 * i]), let lo = hexValue(text[3 + 2 * i]) else { valid = false; break }
                buffer[i] = hi << 4 | lo
                initialized = i + 1
            }
        }
        return valid ? out : nil
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
