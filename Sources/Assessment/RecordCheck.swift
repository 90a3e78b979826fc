/// Parses and validates one submitted record: the gate every record passes at intake.
public enum RecordCheck {
    public enum Outcome: Sendable {
        case valid(JSONValue)
        case invalid(SchemaViolation)
    }

    /// Whether a submitted record may be stored: nil when valid, else the first reason. Most
    /// valid records pass a one-pass scan of their bytes; the rest, and every refusal, go
    /// through `check`, which says where and why.
    public static func validate(_ bytes: [UInt8], limits: RecordLimits = RecordLimits()) -> SchemaViolation? {
        if SchemaProgram.deployment.scan(bytes, limits: limits) { return nil }
        if case .invalid(let violation) = check(bytes, limits: limits) { return violation }
        return nil
    }

    public static func check(_ bytes: [UInt8], schema: RecordSchema = .deployment, limits: RecordLimits = RecordLimits()) -> Outcome {
        if bytes.count > limits.maximumBytes {
            return .invalid(SchemaViolation(field: "", message: "record is \(bytes.count) bytes; the limit is \(limits.maximumBytes) bytes"))
        }
        let value: JSONValue
        var shape = JSONParser.Shape()
        do { value = try JSONParser.parse(bytes, shape: &shape) } catch {
            return .invalid(SchemaViolation(field: "", message: error.description))
        }
        guard case .object = value else {
            return .invalid(SchemaViolation(field: "", message: "a record must be a JSON object, found \(value.typeName)"))
        }
        if shape.longestString > limits.maximumStringBytes, let long = longString(in: value, path: "", limit: limits.maximumStringBytes) {
            return .invalid(long)
        }
        // The flattened check passes a valid record quickly; the tree says what is wrong.
        let program = schema === RecordSchema.deployment ? SchemaProgram.deployment : SchemaProgram(schema)
        if !program.accepts(value), let first = schema.validate(value, limit: 1).first { return .invalid(first) }
        // The id is an identifier (and a text column): no control characters. Free-text fields
        // keep whatever they hold, NUL included, in the stored record.
        if let id = value["id"]?.stringValue, id.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return .invalid(SchemaViolation(field: "id", message: "an identifier may not contain control characters (U+0000–U+001F, U+007F)"))
        }
        return .valid(value)
    }

    /// The first string (key or value) longer than `limit` UTF-8 bytes, named by its path (built
    /// only when one is found).
    static func longString(in value: JSONValue, path: @autoclosure () -> String, limit: Int) -> SchemaViolation? {
        func tooLong(_ field: String, _ count: Int) -> SchemaViolation {
            SchemaViolation(field: field, message: "text of \(count) bytes; the limit for one field is \(limit) bytes")
        }
        switch value {
        case .string(let s):
            let n = s.utf8.count
            return n > limit ? tooLong(path(), n) : nil
        case .array(let elements):
            for (i, e) in elements.enumerated() {
                if let v = longString(in: e, path: "\(path())[\(i)]", limit: limit) { return v }
            }
        case .object(let members):
            for m in members {
                func field() -> String { let p = path(); return p.isEmpty ? m.key : "\(p).\(m.key)" }
                if m.key.utf8.count > limit { return tooLong(field(), m.key.utf8.count) }
                if let v = longString(in: m.value, path: field(), limit: limit) { return v }
            }
        default: break
        }
        return nil
    }
}

/// What one record may be, whatever the schema says: bounds that keep a hostile or broken
/// submission from costing memory or time.
public struct RecordLimits: Sendable, Equatable {
    /// Bytes of one record's JSON text.
    public var maximumBytes = 1024 * 1024
    /// UTF-8 bytes of any one string (key or value).
    public var maximumStringBytes = 64 * 1024
    public init() {}
}
