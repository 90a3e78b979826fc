/// Turns CSV rows into deployment records. Two layouts are understood:
/// - the EFF Atlas of Surveillance export (recognised by its `AOSNUMBER` and `Technology` columns);
/// - generic: each header is a dotted field path of the deployment schema (`system.type`,
///   `safeguards.human_review`, …); array fields take `;`-separated values; empty cells are absent.
public struct CSVRecordMapping: Sendable {
    public enum Layout: String, Sendable { case atlas, generic }

    public let layout: Layout
    let header: [String]
    let columns: [String: Int]
    let schema: RecordSchema

    public struct HeaderError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public init(header: [String], schema: RecordSchema = .deployment) throws(HeaderError) {
        self.header = header
        self.schema = schema
        var columns: [String: Int] = [:]
        for (i, name) in header.enumerated() {
            if let earlier = columns[name.trimmingSpaces] {
                throw HeaderError(description: "line 1: columns \(earlier + 1) and \(i + 1) are both named \"\(name.trimmingSpaces)\"; a value would be lost, so rename or remove one of them")
            }
            columns[name.trimmingSpaces] = i
        }
        self.columns = columns
        if columns["AOSNUMBER"] != nil && columns["Technology"] != nil {
            layout = .atlas
            return
        }
        layout = .generic
        for name in header.map(\.trimmingSpaces) where schema.property(atPath: name) == nil || name.isEmpty {
            throw HeaderError(description: "line 1: column \"\(name)\" is not a field of the deployment schema; name columns by field path (e.g. system.type, operator.country) or use the Atlas of Surveillance layout")
        }
    }

    /// The record for one data row, or the field that is wrong and why.
    public func record(_ row: [String]) -> Result<JSONValue, SchemaViolation> {
        guard row.count == header.count else {
            return .failure(SchemaViolation(field: "", message: "row has \(row.count) fields, the header has \(header.count)"))
        }
        switch layout {
        case .atlas: return .success(AtlasOfSurveillance.record(row, columns: columns))
        case .generic: return generic(row)
        }
    }

    private func generic(_ row: [String]) -> Result<JSONValue, SchemaViolation> {
        var record = JSONValue.object([])
        for (i, name) in header.enumerated() {
            let cell = row[i].trimmingSpaces
            if cell.isEmpty { continue }
            let path = name.trimmingSpaces
            guard let field = schema.property(atPath: path) else { continue }
            let value: JSONValue
            switch field.types?.first {
            case "array":
                value = .array(cell.split(separator: ";").map { .string(String($0).trimmingSpaces) })
            case "boolean":
                switch cell.lowercased() {
                case "true", "yes", "y", "1": value = .bool(true)
                case "false", "no", "n", "0": value = .bool(false)
                default: return .failure(SchemaViolation(field: path, message: "\"\(cell)\" is not a boolean (use true/false or yes/no)"))
                }
            case "integer", "number":
                guard let n = Double(cell) else {
                    return .failure(SchemaViolation(field: path, message: "\"\(cell)\" is not a number"))
                }
                value = .number(n)
            default:
                value = .string(cell)
            }
            record.set(path: path.split(separator: ".").map(String.init), value)
        }
        return .success(record)
    }
}

extension JSONValue {
    /// Sets a nested member, creating objects on the way.
    public mutating func set(path: [String], _ value: JSONValue) {
        guard let key = path.first else { self = value; return }
        guard case .object(var members) = self else { return }
        if let i = members.firstIndex(where: { $0.key == key }) {
            var child = members[i].value
            child.set(path: Array(path.dropFirst()), value)
            members[i].value = child
        } else {
            var child = JSONValue.object([])
            child.set(path: Array(path.dropFirst()), value)
            members.append((key, path.count == 1 ? value : child))
        }
        self = .object(members)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
