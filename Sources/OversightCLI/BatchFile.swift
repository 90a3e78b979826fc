import Assessment
import Foundation
import Wire

/// Reads a batch file (JSON Lines or CSV) as a stream of submitted records, 1 MiB at a time,
/// so that files of any size use bounded memory.
struct BatchFile {
    enum Format: String, CaseIterable {
        case jsonl, json, csv
    }

    /// A `.json` file is read whole (its records are not one per line): at most this large.
    static let maximumJSONDocument = 1 << 30

    struct OpenError: Error, CustomStringConvertible {
        let description: String
    }

    let path: String
    let format: Format
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    private var lineNumber: Int64 = 0
    private var atEnd = false
    private var csv = CSVRowParser()
    private var mapping: CSVRecordMapping?
    /// A `.json` file's records, read at open, and how many were handed out.
    private var document: [SubmittedRecord] = []
    private var documentNext = 0
    /// Size of the file, and bytes of it turned into records so far: for progress estimates.
    let fileSize: Int64
    private(set) var bytesConsumed: Int64 = 0

    /// Which facts the built-in evidence pack reads from an Atlas export's text into each
    /// record's `inferred` list.
    let evidence: EvidenceUse
    /// The pack that reads it (the built-in one unless `--evidence-pack` names another).
    let evidencePack: EvidencePack

    init(path: String, format: Format?, evidence: EvidenceUse = .all, evidencePack: EvidencePack = .builtIn) throws {
        self.evidence = evidence
        self.evidencePack = evidencePack
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw OpenError(description: "file not found: \(path)")
        }
        guard !isDirectory.boolValue else { throw OpenError(description: "\(path) is a directory; give a .jsonl or .csv file") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw OpenError(description: "cannot read \(path): permission denied?")
        }
        self.path = path
        self.handle = handle
        fileSize = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.int64Value ?? 0
        if let format {
            self.format = format
        } else if path.lowercased().hasSuffix(".csv") {
            self.format = .csv
        } else if path.lowercased().hasSuffix(".json") {
            self.format = .json
        } else if path.lowercased().hasSuffix(".jsonl") || path.lowercased().hasSuffix(".ndjson") {
            self.format = .jsonl
        } else {
            throw OpenError(description: "cannot tell the format of \(path) from its name; pass --format jsonl, json or csv")
        }
        // A file that is not text (an image, a spreadsheet's binary format, a compressed
        // export) is refused before anything is sent, rather than rejected line by line.
        let head = (try? handle.read(upToCount: 64 * 1024)) ?? Data()
        try handle.seek(toOffset: 0)
        if let problem = Self.binaryProblem(Array(head)) {
            throw OpenError(description: "\(path) is not a text file (\(problem)); give a JSON Lines (.jsonl) or CSV file, saved as UTF-8 text")
        }
        if self.format == .json {
            guard fileSize <= Self.maximumJSONDocument else {
                throw OpenError(description: "\(path) is \(fileSize) bytes: a .json file is read whole, up to 1 GiB; write it as JSON Lines (.jsonl, one record per line) instead")
            }
            let whole = Array(try handle.readToEnd() ?? Data())
            do {
                document = try JSONDocument.records(whole).map { SubmittedRecord(line: $0.line, body: .json(Array($0.bytes))) }
            } catch {
                throw OpenError(description: "\(path):\(error.line): \(error.message)")
            }
            bytesConsumed = 0
        }
    }

    /// Why these first bytes of a file are not UTF-8 text, or nil if they are.
    static func binaryProblem(_ head: [UInt8]) -> String? {
        if let nul = head.firstIndex(of: 0) { return "a NUL byte at offset \(nul)" }
        // The head may end inside a character: only what is complete must be valid.
        var end = head.count
        var back = 0
        while end > 0 && back < 3 && head[end - 1] & 0xC0 == 0x80 { end -= 1; back += 1 }
        if end > 0 && head[end - 1] >= 0xC0 { end -= 1 }
        if String(validating: head[..<end], as: UTF8.self) == nil { return "its first bytes are not valid UTF-8" }
        return nil
    }

    /// The next line (without newline) and its number, or nil at end of file.
    private mutating func nextLine() throws -> (ArraySlice<UInt8>, Int64)? {
        while true {
            if let newline = buffer[bufferStart...].firstIndex(of: 0x0A) {
                let line = buffer[bufferStart..<newline]
                bytesConsumed += Int64(newline + 1 - bufferStart)
                bufferStart = newline + 1
                lineNumber += 1
                return (line, lineNumber)
            }
            if atEnd {
                guard bufferStart < buffer.count else { return nil }
                let line = buffer[bufferStart...]
                bytesConsumed += Int64(buffer.count - bufferStart)
                bufferStart = buffer.count
                lineNumber += 1
                return (line, lineNumber)
            }
            if bufferStart > 0 {
                buffer.removeFirst(bufferStart)
                bufferStart = 0
            }
            let data = try handle.read(upToCount: 1 << 20) ?? Data()
            if data.isEmpty { atEnd = true } else { buffer.append(contentsOf: data) }
        }
    }

    /// The CSV layout recognised from the header, once the first records were read.
    var csvLayout: CSVRecordMapping.Layout? { mapping?.layout }

    /// Records in the whole file, estimated from the bytes read so far.
    func estimatedTotal(recordsSoFar: Int64) -> Int64 {
        guard bytesConsumed > 0, fileSize > bytesConsumed else { return recordsSoFar }
        return Int64(Double(recordsSoFar) * Double(fileSize) / Double(bytesConsumed))
    }

    /// Up to `count` records, and no more than about `maxBytes` of them; empty at end of file.
    /// A line larger than the wire carries goes as its prefix, length and SHA-256, to be kept
    /// as a rejection by line while the rest of the file goes on.
    mutating func next(_ count: Int, maxBytes: Int = 24 << 20) throws -> [SubmittedRecord] {
        var records: [SubmittedRecord] = []
        records.reserveCapacity(min(count, 4096))
        var bytes = 0
        if format == .json {
            while records.count < count, bytes < maxBytes, documentNext < document.count {
                let record = document[documentNext]
                documentNext += 1
                bytes += record.sizeHint
                records.append(record)
            }
            bytesConsumed = documentNext == document.count ? fileSize : fileSize * Int64(documentNext) / Int64(max(1, document.count))
            return records
        }
        while records.count < count, bytes < maxBytes, let (line, number) = try nextLine() {
            bytes += line.count
            switch format {
            case .jsonl, .json:
                var trimmed = line
                if trimmed.last == 0x0D { trimmed = trimmed.dropLast() }
                if trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                if number == 1, trimmed.starts(with: [0xEF, 0xBB, 0xBF]) { trimmed = trimmed.dropFirst(3) }
                if trimmed.count > Envelope.maximumRecordSize {
                    let whole = Array(trimmed)
                    records.append(SubmittedRecord(line: number, body: .oversized(prefix: Array(whole.prefix(Envelope.rejectedPrefixSize)),
                                                                                 bytes: UInt64(whole.count), sha256: AuditHash.sha256(whole))))
                    continue
                }
                records.append(SubmittedRecord(line: number, body: .json(Array(trimmed))))
            case .csv:
                // A spreadsheet's "CSV UTF-8" starts with a byte-order mark, before any quote.
                let line = number == 1 && line.starts(with: [0xEF, 0xBB, 0xBF]) ? line.dropFirst(3) : line
                try take(csv.feed(line, number: number), into: &records)
            }
        }
        if records.count < count && format == .csv {
            try take(csv.finish(), into: &records)
        }
        return records
    }

    /// CSV rows as records: the first row is the header; a malformed row is a rejection by line.
    private mutating func take(_ rows: [Result<CSVRowParser.Row, CSVRowParser.Malformed>], into records: inout [SubmittedRecord]) throws {
        for outcome in rows {
            switch outcome {
            case .failure(let malformed):
                guard mapping != nil else { throw OpenError(description: "\(path): the header (\(malformed.description)) cannot be read") }
                records.append(SubmittedRecord(line: malformed.line, body: .malformed(raw: malformed.raw, field: "", message: malformed.message)))
            case .success(let row):
                guard let mapping else {
                    var header = row.fields
                    if let first = header.first, first.hasPrefix("\u{FEFF}") { header[0] = String(first.dropFirst()) }
                    do { mapping = try CSVRecordMapping(header: header) } catch { throw OpenError(description: "\(path): \(error)") }
                    continue
                }
                if row.fields.count == 1 && row.fields[0].isEmpty { continue }
                switch mapping.record(row.fields) {
                case .success(let record):
                    let read = mapping.layout == .atlas ? evidencePack.annotate(record, evidence) : record
                    records.append(SubmittedRecord(line: row.line, body: .json(read.canonicalBytes)))
                case .failure(let violation):
                    records.append(SubmittedRecord(line: row.line, body: .malformed(raw: row.raw, field: violation.field, message: violation.message)))
                }
            }
        }
    }
}
