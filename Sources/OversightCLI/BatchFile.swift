import Assessment
import Foundation
import Wire

/// Reads a batch file (JSON Lines or CSV) as a stream of submitted records, 1 MiB at a time,
/// so that files of any size use bounded memory.
struct BatchFile {
    enum Format: String, CaseIterable {
        case jsonl, csv
    }

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
    /// Size of the file, and bytes of it turned into records so far: for progress estimates.
    let fileSize: Int64
    private(set) var bytesConsumed: Int64 = 0

    init(path: String, format: Format?) throws {
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
        } else if path.lowercased().hasSuffix(".jsonl") || path.lowercased().hasSuffix(".ndjson") || path.lowercased().hasSuffix(".json") {
            self.format = .jsonl
        } else {
            throw OpenError(description: "cannot tell the format of \(path) from its name; pass --format jsonl or --format csv")
        }
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

    /// Up to `count` records; empty at end of file.
    mutating func next(_ count: Int) throws -> [SubmittedRecord] {
        var records: [SubmittedRecord] = []
        records.reserveCapacity(count)
        while records.count < count, let (line, number) = try nextLine() {
            switch format {
            case .jsonl:
                var trimmed = line
                if trimmed.last == 0x0D { trimmed = trimmed.dropLast() }
                if trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                if number == 1, trimmed.starts(with: [0xEF, 0xBB, 0xBF]) { trimmed = trimmed.dropFirst(3) }
                records.append(SubmittedRecord(line: number, body: .json(Array(trimmed))))
            case .csv:
                do {
                    guard let row = try csv.feed(line, number: number) else { continue }
                    guard let mapping else {
                        var header = row.fields
                        if let first = header.first, first.hasPrefix("\u{FEFF}") { header[0] = String(first.dropFirst()) }
                        mapping = try CSVRecordMapping(header: header)
                        continue
                    }
                    if row.fields.count == 1 && row.fields[0].isEmpty { continue }
                    switch mapping.record(row.fields) {
                    case .success(let record):
                        records.append(SubmittedRecord(line: row.line, body: .json(record.canonicalBytes)))
                    case .failure(let violation):
                        records.append(SubmittedRecord(line: row.line, body: .malformed(raw: row.raw, field: violation.field, message: violation.message)))
                    }
                } catch let malformed as CSVRowParser.Malformed {
                    records.append(SubmittedRecord(line: malformed.line, body: .malformed(raw: malformed.raw, field: "", message: malformed.message)))
                } catch let error as CSVRecordMapping.HeaderError {
                    throw OpenError(description: "\(path): \(error)")
                }
            }
        }
        if records.count < count && format == .csv {
            do { try csv.finish() } catch {
                records.append(SubmittedRecord(line: error.line, body: .malformed(raw: error.raw, field: "", message: error.message)))
            }
        }
        return records
    }
}
