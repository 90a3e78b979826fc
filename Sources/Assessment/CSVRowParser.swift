/// RFC 4180 CSV, fed one physical line at a time so that files of any size stream: a quoted
/// field may span lines; `""` inside quotes is a quote. Reports where a row went wrong.
public struct CSVRowParser {
    public struct Row: Sendable {
        /// Line number (1-based) where the row starts.
        public let line: Int64
        public let fields: [String]
        /// The row's text as it was in the file.
        public let raw: [UInt8]
    }

    public struct Malformed: Error, Sendable, CustomStringConvertible {
        public let line: Int64
        public let message: String
        public let raw: [UInt8]
        public var description: String { "line \(line): \(message)" }
    }

    private var pending: [UInt8] = []
    private var pendingLine: Int64 = 0
    public init() {}

    /// Feeds one line (without its newline). Returns a row when one is complete, nil when the
    /// line continues a quoted field.
    public mutating func feed(_ line: ArraySlice<UInt8>, number: Int64) throws(Malformed) -> Row? {
        if pending.isEmpty { pendingLine = number } else { pending.append(0x0A) }
        pending.append(contentsOf: line.last == 0x0D ? line.dropLast() : line)
        guard let fields = try split(pending) else {
            if pending.count > 4 * 1024 * 1024 {
                let raw = pending
                pending = []
                throw Malformed(line: pendingLine, message: "a quoted field never ends (row longer than 4 MiB); check for an unbalanced quote", raw: Array(raw.prefix(1024)))
            }
            return nil
        }
        defer { pending = [] }
        return Row(line: pendingLine, fields: fields, raw: pending)
    }

    /// At end of input: a row left open means an unbalanced quote.
    public mutating func finish() throws(Malformed) {
        guard !pending.isEmpty else { return }
        let raw = pending
        pending = []
        throw Malformed(line: pendingLine, message: "the file ends inside a quoted field; check for an unbalanced quote", raw: Array(raw.prefix(1024)))
    }

    /// Splits a complete row; nil when a quoted field is still open.
    private func split(_ bytes: [UInt8]) throws(Malformed) -> [String]? {
        var fields: [String] = []
        var field: [UInt8] = []
        var i = 0
        var inQuotes = false
        var wasQuoted = false
        while i < bytes.count {
            let b = bytes[i]
            if inQuotes {
                if b == 0x22 {
                    if i + 1 < bytes.count, bytes[i + 1] == 0x22 { field.append(0x22); i += 2; continue }
                    inQuotes = false
                    i += 1
                    if i < bytes.count, bytes[i] != 0x2C {
                        throw Malformed(line: pendingLine, message: "unexpected text after a closing quote in field \(fields.count + 1)", raw: bytes)
                    }
                    continue
                }
                field.append(b)
            } else if b == 0x2C {
                fields.append(try text(field, fields.count))
                field = []
                wasQuoted = false
            } else if b == 0x22 && field.isEmpty && !wasQuoted {
                inQuotes = true
                wasQuoted = true
            } else {
                field.append(b)
            }
            i += 1
        }
        if inQuotes { return nil }
        fields.append(try text(field, fields.count))
        return fields
    }

    private func text(_ bytes: [UInt8], _ index: Int) throws(Malformed) -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw Malformed(line: pendingLine, message: "field \(index + 1) is not valid UTF-8 (save the file as UTF-8)", raw: bytes)
        }
        return s
    }
}
