import Crypto

/// A criteria pack, compiled once: rules with citations and conditions, and how their outcomes
/// aggregate into a verdict and a score. Scoring a record parses nothing.
public struct CriteriaPack: Sendable {
    public struct Rule: Sendable {
        public let id: String
        public let title: String
        public let citation: String
        public let severity: Verdict
        public let points: Int
        public let rationale: String
        public let remediation: String
        /// When it needs information, may this rule make the verdict insufficient_information?
        public let blocksVerdict: Bool
        let condition: Condition
    }

    public let id: String
    public let version: String
    public let title: String
    public let rules: [Rule]
    /// ISO country codes where the pack binds in law; elsewhere it is a benchmark.
    public let bindingIn: Set<String>
    public let blockingSeverities: Set<Verdict>
    public let unknownWeight: Double
    /// The pack's canonical JSON, exactly what `sha256` is computed over and what is stored.
    public let canonicalText: String
    public let sha256: [UInt8]

    public struct CompileError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Parses and compiles a pack, checking every field path and value against the record schema.
    public init(json text: String, schema: RecordSchema = .deployment) throws(CompileError) {
        let document: JSONValue
        do { document = try JSONParser.parse(text) } catch {
            throw CompileError(description: "criteria pack is not valid JSON: \(error)")
        }
        try self.init(document: document, schema: schema)
    }

    public init(document: JSONValue, schema: RecordSchema = .deployment) throws(CompileError) {
        func string(_ key: String, in object: JSONValue, at path: String) throws(CompileError) -> String {
            guard let value = object[key]?.stringValue, !value.isEmpty else {
                throw CompileError(description: "\(path): \"\(key)\" must be a non-empty string")
            }
            return value
        }
        id = try string("id", in: document, at: "pack")
        version = try string("version", in: document, at: "pack")
        title = try string("title", in: document, at: "pack")
        if case .array(let codes)? = document["binding_in"] {
            bindingIn = Set(codes.compactMap(\.stringValue))
        } else {
            bindingIn = []
        }
        let aggregation = document["aggregation"] ?? .object([])
        var blocking: Set<Verdict> = [.prohibited]
        if case .array(let names)? = aggregation["blocking_severities"] {
            blocking = []
            for name in names {
                guard let s = name.stringValue, let v = Verdict(rawValue: s), v != .insufficientInformation else {
                    throw CompileError(description: "pack \(id): aggregation.blocking_severities holds an unknown severity \(name.canonicalString)")
                }
                blocking.insert(v)
            }
        }
        blockingSeverities = blocking
        if case .number(let w)? = aggregation["unknown_weight"] {
            guard (0...1).contains(w) else { throw CompileError(description: "pack \(id): aggregation.unknown_weight must be between 0 and 1") }
            unknownWeight = w
        } else {
            unknownWeight = 0.5
        }
        guard case .array(let ruleDocs)? = document["rules"], !ruleDocs.isEmpty else {
            throw CompileError(description: "pack \(id): \"rules\" must be a non-empty array")
        }
        var rules: [Rule] = []
        var seen: Set<String> = []
        for (i, doc) in ruleDocs.enumerated() {
            let at = "pack \(id), rules[\(i)]"
            let ruleID = try string("id", in: doc, at: at)
            guard seen.insert(ruleID).inserted else { throw CompileError(description: "\(at): duplicate rule id \"\(ruleID)\"") }
            let severityName = try string("severity", in: doc, at: at)
            guard let severity = Verdict(rawValue: severityName), severity != .insufficientInformation else {
                throw CompileError(description: "\(at): unknown severity \"\(severityName)\" (use prohibited, high_risk, elevated, limited or minimal)")
            }
            guard case .number(let points)? = doc["points"], points >= 0, points <= 100, points.rounded() == points else {
                throw CompileError(description: "\(at): \"points\" must be an integer from 0 to 100")
            }
            guard let when = doc["when"] else { throw CompileError(description: "\(at): \"when\" (the condition) is missing") }
            let condition = try Self.compile(when, at: "\(at) (\(ruleID)).when", schema: schema)
            var blocks = true
            if let flag = doc["blocks_verdict"] {
                guard case .bool(let b) = flag else { throw CompileError(description: "\(at): \"blocks_verdict\" must be true or false") }
                blocks = b
            }
            rules.append(Rule(id: ruleID,
                              title: try string("title", in: doc, at: at),
                              citation: try string("citation", in: doc, at: at),
                              severity: severity, points: Int(points),
                              rationale: try string("rationale", in: doc, at: at),
                              remediation: try string("remediation", in: doc, at: at),
                              blocksVerdict: blocks, condition: condition))
        }
        self.rules = rules
        canonicalText = document.canonicalString
        sha256 = Array(SHA256.hash(data: Array(canonicalText.utf8)))
    }

    public var sha256Hex: String { sha256.hexString }

    static func compile(_ doc: JSONValue, at path: String, schema: RecordSchema) throws(CompileError) -> Condition {
        guard case .object(let members) = doc, !members.isEmpty else {
            throw CompileError(description: "\(path): a condition must be a non-empty object")
        }
        if let parts = doc["all"] ?? doc["any"] {
            guard members.count == 1, case .array(let list) = parts, !list.isEmpty else {
                throw CompileError(description: "\(path): \"all\"/\"any\" must be the only key and hold a non-empty array")
            }
            var compiled: [Condition] = []
            for (i, part) in list.enumerated() {
                compiled.append(try compile(part, at: "\(path).\(members[0].key)[\(i)]", schema: schema))
            }
            return members[0].key == "all" ? .all(compiled) : .any(compiled)
        }
        if let inner = doc["not"] {
            guard members.count == 1 else { throw CompileError(description: "\(path): \"not\" must be the only key") }
            return .not(try compile(inner, at: "\(path).not", schema: schema))
        }
        guard let field = doc["field"]?.stringValue else {
            throw CompileError(description: "\(path): expected \"all\", \"any\", \"not\" or a \"field\" test")
        }
        guard let fieldSchema = schema.property(atPath: field) else {
            throw CompileError(description: "\(path): field \"\(field)\" is not in the deployment schema")
        }
        guard members.count == 2, let (op, operand) = members.first(where: { $0.key != "field" }).map({ ($0.key, $0.value) }) else {
            throw CompileError(description: "\(path): a field test has exactly one operator besides \"field\"")
        }
        func checkValue(_ value: JSONValue) throws(CompileError) {
            if let allowed = fieldSchema.allowedValues, let s = value.stringValue, !allowed.contains(s) {
                throw CompileError(description: "\(path): \"\(s)\" is not a value of \(field) (allowed: \(allowed.joined(separator: ", ")))")
            }
        }
        let test: Condition.Test
        switch (op, operand) {
        case ("equals", _): try checkValue(operand); test = .equals(operand)
        case ("in", .array(let options)): for o in options { try checkValue(o) }; test = .isIn(options)
        case ("contains", _):
            guard fieldSchema.isArray else { throw CompileError(description: "\(path): \"contains\" needs an array field; \(field) is not one") }
            try checkValue(operand); test = .contains(operand)
        case ("contains_any", .array(let options)):
            guard fieldSchema.isArray else { throw CompileError(description: "\(path): \"contains_any\" needs an array field; \(field) is not one") }
            for o in options { try checkValue(o) }; test = .containsAny(options)
        case ("exists", .bool(let b)): test = .exists(b)
        case (let name, .number(let bound)) where Condition.Comparison(rawValue: name) != nil:
            test = .compare(Condition.Comparison(rawValue: name)!, bound)
        default:
            throw CompileError(description: "\(path): unknown operator \"\(op)\" or wrong operand type (use equals, in, contains, contains_any, exists, gt, gte, lt, lte)")
        }
        return .leaf(FieldPath(field), test)
    }
}

extension CriteriaPack {
    /// The packs that ship with Oversight, from `Schemas/packs/`.
    public static let builtIn: [CriteriaPack] = EmbeddedSchemas.files
        .filter { !$0.name.hasSuffix(".schema.json") }
        .map { file in
            do { return try CriteriaPack(json: file.text) } catch {
                fatalError("built-in pack \(file.name) does not compile: \(error)")
            }
        }

    public static func builtIn(id: String) -> CriteriaPack? { builtIn.first { $0.id == id } }
}

extension Sequence where Element == UInt8 {
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in self { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 0xF)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
