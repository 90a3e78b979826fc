/// Parses and validates one submitted record: the gate every record passes at intake.
public enum RecordCheck {
    public enum Outcome: Sendable {
        case valid(JSONValue)
        case invalid(SchemaViolation)
    }

    public static func check(_ bytes: [UInt8], schema: RecordSchema = .deployment) -> Outcome {
        if bytes.count > 1024 * 1024 {
            return .invalid(SchemaViolation(field: "", message: "record is larger than 1 MiB (\(bytes.count) bytes)"))
        }
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            return .invalid(SchemaViolation(field: "", message: error.description))
        }
        guard case .object = value else {
            return .invalid(SchemaViolation(field: "", message: "a record must be a JSON object, found \(value.typeName)"))
        }
        if let first = schema.validate(value, limit: 1).first { return .invalid(first) }
        return .valid(value)
    }
}
