/// One reason a record does not conform to its schema: which field, and what is wrong.
public struct SchemaViolation: Error, Hashable, Sendable, CustomStringConvertible {
    /// Dotted path of the field, `items[2]` for array elements; empty for the record itself.
    public let field: String
    public let message: String
    public init(field: String, message: String) { self.field = field; self.message = message }
    public var description: String { field.isEmpty ? message : "field \"\(field)\": \(message)" }
}

/// The subset of JSON Schema (2020-12) that Oversight's schemas use, compiled once into a tree
/// of checks: `type`, `enum`, `properties`, `additionalProperties: false`, `required`, `items`,
/// `minimum`, `maximum`, `minLength`, `maxLength`, `maxItems`. Keywords outside the subset are
/// refused at compile time so that a schema edit can never be silently ignored.
public final class RecordSchema: Sendable {
    let types: Set<String>?
    /// `types` as bits of `kindBit` (no hashing per value).
    let typeMask: UInt8?
    let enumValues: [JSONValue]?
    let properties: [String: RecordSchema]
    let propertyOrder: [String]
    let additionalProperties: Bool
    let required: [String]
    let items: RecordSchema?
    let minimum: Double?
    let maximum: Double?
    let minLength: Int?
    let maxLength: Int?
    let maxItems: Int?
    /// `x-question`: the field asked about in plain words, for whoever can answer it (an agency,
    /// a vendor); what an assessment's open questions say.
    public let question: String?

    static let annotationKeywords: Set<String> = ["$schema", "$id", "title", "description", "$comment", "examples", "default"]

    public struct CompileError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public init(_ schema: JSONValue, at path: String = "#") throws(CompileError) {
        guard case .object(let members) = schema else { throw CompileError(description: "\(path): a schema must be an object") }
        var types: Set<String>?
        var enumValues: [JSONValue]?
        var properties: [String: RecordSchema] = [:]
        var order: [String] = []
        var additional = true
        var required: [String] = []
        var items: RecordSchema?
        var minimum: Double?, maximum: Double?
        var minLength: Int?, maxLength: Int?, maxItems: Int?
        var question: String?
        for (key, value) in members {
            switch (key, value) {
            case ("type", .string(let t)): types = [t]
            case ("type", .array(let ts)): types = Set(ts.compactMap(\.stringValue))
            case ("enum", .array(let values)): enumValues = values
            case ("properties", .object(let props)):
                for (name, sub) in props {
                    properties[name] = try RecordSchema(sub, at: "\(path)/properties/\(name)")
                    order.append(name)
                }
            case ("additionalProperties", .bool(let b)): additional = b
            case ("required", .array(let names)): required = names.compactMap(\.stringValue)
            case ("items", _): items = try RecordSchema(value, at: "\(path)/items")
            case ("minimum", .number(let n)): minimum = n
            case ("maximum", .number(let n)): maximum = n
            case ("minLength", .number(let n)): minLength = Int(n)
            case ("maxLength", .number(let n)): maxLength = Int(n)
            case ("maxItems", .number(let n)): maxItems = Int(n)
            case ("x-question", .string(let q)): question = q
            default:
                if !Self.annotationKeywords.contains(key) {
                    throw CompileError(description: "\(path): unsupported schema keyword \"\(key)\"")
                }
            }
        }
        self.types = types
        typeMask = types.map { names in names.reduce(UInt8(0)) { $0 | (Self.kindBits[$1] ?? 0) } }
        self.enumValues = enumValues
        self.properties = properties
        self.propertyOrder = order
        self.additionalProperties = additional
        self.required = required
        self.items = items
        self.minimum = minimum
        self.maximum = maximum
        self.minLength = minLength
        self.maxLength = maxLength
        self.maxItems = maxItems
        self.question = question
    }

    /// Every leaf field's path and `x-question`, for the fields that have one, in path order.
    public var fieldQuestions: [(path: String, question: String)] {
        var out: [(path: String, question: String)] = []
        func walk(_ schema: RecordSchema, _ path: String) {
            if let question = schema.question { out.append((path, question)) }
            for key in schema.propertyOrder { walk(schema.properties[key]!, path.isEmpty ? key : "\(path).\(key)") }
        }
        walk(self, "")
        return out.sorted { $0.path < $1.path }
    }

    /// The schema of the property at a dotted path, if the schema declares it.
    public func property(atPath path: String) -> RecordSchema? {
        var node: RecordSchema = self
        for part in path.split(separator: ".") {
            guard let next = node.properties[String(part)] else { return nil }
            node = next
        }
        return node
    }

    /// Allowed values of an `enum` (or of the `enum` of an array's items).
    public var allowedValues: [String]? {
        if let enumValues { return enumValues.compactMap(\.stringValue) }
        return items?.allowedValues
    }

    public var isArray: Bool { types == ["array"] }

    /// Every violation in `value`, at most `limit` of them.
    public func validate(_ value: JSONValue, limit: Int = 10) -> [SchemaViolation] {
        var violations: [SchemaViolation] = []
        check(value, path: "", into: &violations, limit: limit)
        return violations
    }

    static let kindBits: [String: UInt8] = ["null": 1, "boolean": 2, "integer": 4, "number": 8, "string": 16, "array": 32, "object": 64]

    /// The value's kind as a bit; an integral number counts as both integer and number.
    static func kindBit(_ value: JSONValue) -> UInt8 {
        switch value {
        case .null: 1
        case .bool: 2
        case .number(let n): n.rounded() == n && abs(n) < 9.007_199_254_740_992e15 ? 4 | 8 : 8
        case .string: 16
        case .array: 32
        case .object: 64
        }
    }

    /// `path` is built only when needed: for a violation, or to descend into an object or array
    /// (building it for every valid leaf was a tenth of intake's time).
    private func check(_ value: JSONValue, path: @autoclosure () -> String, into violations: inout [SchemaViolation], limit: Int) {
        guard violations.count < limit else { return }
        func fail(_ message: String) { violations.append(SchemaViolation(field: path(), message: message)) }
        if let types, let typeMask {
            guard typeMask & Self.kindBit(value) != 0 else {
                let actual = value.typeName
                fail("expected \(types.sorted().joined(separator: " or ")), found \(actual)\(preview(value))")
                return
            }
        }
        if let enumValues, !enumValues.contains(value) {
            let allowed = enumValues.map { $0.canonicalString }.joined(separator: ", ")
            fail("\(value.canonicalString.prefix(80)) is not one of the allowed values: \(allowed)")
            return
        }
        switch value {
        case .number(let n):
            if let minimum, n < minimum { fail("\(value.canonicalString) is below the minimum \(minimum.formattedBound)") }
            if let maximum, n > maximum { fail("\(value.canonicalString) is above the maximum \(maximum.formattedBound)") }
        case .string(let s):
            // Characters are at most UTF-8 bytes: most strings pass without being counted.
            if minLength != nil || (maxLength.map { s.utf8.count > $0 } ?? false) {
                let count = s.unicodeScalars.count
                if let minLength, count < minLength { fail("text is shorter than \(minLength) characters") }
                if let maxLength, count > maxLength { fail("text is longer than \(maxLength) characters (\(count))") }
            }
        case .array(let elements):
            if let maxItems, elements.count > maxItems { fail("more than \(maxItems) items (\(elements.count))") }
            if let items {
                let base = path()
                for (i, e) in elements.enumerated() {
                    items.check(e, path: "\(base)[\(i)]", into: &violations, limit: limit)
                }
            }
        case .object(let members):
            let base = path()
            for name in required where !members.contains(where: { $0.key == name }) {
                violations.append(SchemaViolation(field: join(base, name), message: "is required"))
            }
            for (key, sub) in members {
                if let schema = properties[key] {
                    schema.check(sub, path: join(base, key), into: &violations, limit: limit)
                } else if !additionalProperties {
                    let known = propertyOrder.joined(separator: ", ")
                    violations.append(SchemaViolation(field: join(base, key), message: "unknown field (known fields here: \(known))"))
                }
                if violations.count >= limit { return }
            }
        default: break
        }
    }

    private func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func preview(_ value: JSONValue) -> String {
        switch value {
        case .object, .array: ""
        default: " \(value.canonicalString.prefix(60))"
        }
    }
}

extension Double {
    var formattedBound: String { rounded() == self ? String(Int64(self)) : "\(self)" }
}

extension RecordSchema {
    /// The deployment-record schema from `Schemas/deployment.schema.json`, embedded at build time.
    public static let deployment = embedded("deployment.schema.json")

    /// A schema of `Schemas/`, embedded at build time; a missing or invalid one is a broken build.
    static func embedded(_ name: String) -> RecordSchema {
        guard let text = EmbeddedSchemas.text(named: name) else { fatalError("\(name) was not embedded: the build is broken") }
        do { return try RecordSchema(try JSONParser.parse(text)) } catch { fatalError("Schemas/\(name) is invalid: \(error)") }
    }

    /// The SHA-256 of the deployment schema's text as embedded: what the store's copy of the
    /// schema's questions is checked against.
    public static let deploymentSHA256: [UInt8] = AuditHash.sha256(Array((EmbeddedSchemas.text(named: "deployment.schema.json") ?? "").utf8))
}
