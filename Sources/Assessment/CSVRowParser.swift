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

    /// Lines of a row still open (a quoted field spans them), with their numbers.
    private var pendingLines: [(number: Int64, bytes: [UInt8])] = []
    private var pendingBytes = 0
    private var pendingLine: Int64 { pendingLines.first?.number ?? 0 }

    /// A quoted field open for more lines (or bytes) than this is taken to be a quote that
    /// never closes: its first line is rejected and reading resumes on the next line.
    public var maximumRowLines = 200
    public var maximumRowBytes = 4 * 1024 * 1024

    public init() {}

    /// Feeds one line (without its newline). Returns the rows (or malformed rows) it completes:
    /// none while a quoted field goes on, one as a rule, more after recovering from a quote
    /// that never closed.
    public mutating func feed(_ line: ArraySlice<UInt8>, number: Int64) -> [Result<Row, Malformed>] {
        pendingLines.append((number, Array(line.last == 0x0D ? line.dropLast() : line)))
        pendingBytes += line.count + 1
        var out: [Result<Row, Malformed>] = []
        drain(into: &out, atEnd: false)
        return out
    }

    /// At end of input: a row left open means a quote that never closed; its first line is
    /// rejected and the lines after it are read again as rows.
    public mutating func finish() -> [Result<Row, Malformed>] {
        var out: [Result<Row, Malformed>] = []
        drain(into: &out, atEnd: true)
        return out
    }

    private mutating func drain(into out: inout [Result<Row, Malformed>], atEnd: Bool) {
        while !pendingLines.isEmpty {
            var row: [UInt8] = []
            for (k, line) in pendingLines.enumerated() {
                if k > 0 { row.append(0x0A) }
                row.append(contentsOf: line.bytes)
            }
            do {
                if let fields = try split(row) {
                    out.append(.success(Row(line: pendingLine, fields: fields, raw: row)))
                    pendingLines = []
                    pendingBytes = 0
                    return
                }
            } catch {
                out.append(.failure(error))
                pendingLines = []
                pendingBytes = 0
                return
            }
            // Still open: wait for more, unless it has run too long or the input ended.
            guard atEnd || pendingLines.count > maximumRowLines || pendingBytes > maximumRowBytes else { return }
            let opened = pendingLines.removeFirst()
            pendingBytes = pendingLines.reduce(0) { $0 + $1.bytes.count + 1 }
            let span = pendingLines.count + 1
            let why = atEnd ? "the file ends inside it" : "no closing quote in \(span) lines"
            out.append(.failure(Malformed(line: opened.number,
                message: "a quoted field opened on this line never closes (\(why)); this line is rejected and reading resumes on line \(opened.number + 1)",
                raw: opened.bytes)))
            // The lines after it are read again as rows of their own.
            let rest = pendingLines
            pendingLines = []
            pendingBytes = 0
            for line in rest {
                pendingLines.append(line)
                pendingBytes += line.bytes.count + 1
                drain(into: &out, atEnd: false)
            }
            if !atEnd { return }
        }
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
