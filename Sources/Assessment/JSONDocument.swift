/// The records of a `.json` file: one record (an object, pretty-printed over many lines or
/// not), an array of records, or several top-level values one after another. Each comes back
/// as its bytes exactly as written and the line it starts on; whether a record is valid is
/// for intake to say, by line. Only the structure between records is checked here.
public enum JSONDocument {
    public struct Malformed: Error, Sendable, CustomStringConvertible {
        public let line: Int64
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    public static func records(_ bytes: [UInt8]) throws(Malformed) -> [(line: Int64, bytes: ArraySlice<UInt8>)] {
        var scanner = Scanner(bytes: bytes)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { scanner.i = 3 }
        scanner.skipSpace()
        var out: [(line: Int64, bytes: ArraySlice<UInt8>)] = []
        if scanner.peek == UInt8(ascii: "[") {
            scanner.advance()
            scanner.skipSpace()
            if scanner.peek == UInt8(ascii: "]") { scanner.advance() } else {
                while true {
                    let line = scanner.line
                    let range = try scanner.value()
                    out.append((line, bytes[range]))
                    scanner.skipSpace()
                    guard let next = scanner.peek else { throw Malformed(line: scanner.line, message: "the array of records is not closed with ]") }
                    scanner.advance()
                    if next == UInt8(ascii: "]") { break }
                    guard next == UInt8(ascii: ",") else {
                        throw Malformed(line: scanner.line, message: "expected , or ] after a record in the array, found \"\(Character(Unicode.Scalar(next)))\"")
                    }
                    scanner.skipSpace()
                }
            }
            scanner.skipSpace()
            if scanner.peek != nil { throw Malformed(line: scanner.line, message: "text after the array of records") }
            return out
        }
        while scanner.peek != nil {
            let line = scanner.line
            let range = try scanner.value()
            out.append((line, bytes[range]))
            scanner.skipSpace()
        }
        return out
    }

    /// Finds where each value ends, tracking strings and nesting; counts lines as it goes.
    struct Scanner {
        let bytes: [UInt8]
        var i = 0
        var line: Int64 = 1

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func advance() {
            if bytes[i] == 0x0A { line += 1 }
            i += 1
        }

        mutating func skipSpace() {
            while let b = peek, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { advance() }
        }

        /// One value from here: an object or array to its matching close, or a scalar to the
        /// next comma, bracket or space. Strings are skipped whole, escapes and all.
        mutating func value() throws(Malformed) -> Range<Int> {
            let start = i
            let startLine = line
            var depth = 0
            while let b = peek {
                switch b {
                case UInt8(ascii: "\""):
                    advance()
                    while true {
                        guard let c = peek else { throw Malformed(line: startLine, message: "a string in the record that starts here is never closed") }
                        advance()
                        if c == UInt8(ascii: "\\") { if peek != nil { advance() } } else if c == UInt8(ascii: "\"") { break }
                    }
                    if depth == 0 { return start..<i }
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                    advance()
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 {
                        guard i > start else { throw Malformed(line: line, message: "\(Character(Unicode.Scalar(b))) without its opening") }
                        return start..<i
                    }
                    depth -= 1
                    advance()
                    if depth == 0 { return start..<i }
                case UInt8(ascii: ","), 0x20, 0x09, 0x0A, 0x0D:
                    if depth == 0 {
                        guard i > start else { throw Malformed(line: line, message: "a record was expected here") }
                        return start..<i
                    }
                    advance()
                default:
                    advance()
                }
            }
            if depth > 0 { throw Malformed(line: startLine, message: "the record that starts here never ends (an unbalanced { or [)") }
            return start..<i
        }
    }
}
