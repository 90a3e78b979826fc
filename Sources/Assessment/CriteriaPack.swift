import Crypto

/// A criteria pack, compiled once: rules with citations and conditions, and how their outcomes
/// aggregate into a verdict and a score. Scoring a record parses nothing.
public final class CriteriaPack: Sendable {
    /// A rule: a class, so that iterating rules on the hot path copies one reference, not twelve.
    public final class Rule: Sendable {
        public let id: String
        public let title: String
        public let citation: String
        public let severity: Verdict
        public let points: Int
        public let rationale: String
        public let remediation: String
        /// The day from which the rule applies in law (`applies_from`); before it, an assessment
        /// lists the rule as not yet in force and neither fires nor asks about it.
        public let appliesFrom: CalendarDate?
        /// A criterion that counts toward a threshold ("at least 2 of these 9") of other rules:
        /// what it is, rather than a finding of its own severity.
        public let threshold: Threshold?
        let condition: Condition
        /// The fields the rule reads, for `criteria show`.
        public let fields: [String]
        /// The id as a JSON string literal, for canonical output.
        let quotedID: [UInt8]

        init(id: String, title: String, citation: String, severity: Verdict, points: Int, rationale: String, remediation: String,
             appliesFrom: CalendarDate?, threshold: Threshold?, condition: Condition, fields: [String]) {
            self.id = id; self.title = title; self.citation = citation; self.severity = severity; self.points = points
            self.rationale = rationale; self.remediation = remediation; self.appliesFrom = appliesFrom; self.threshold = threshold
            self.condition = condition; self.fields = fields
            var quoted: [UInt8] = []
            JSONValue.writeString(id, into: &quoted)
            quotedID = quoted
        }

        /// Canonical JSON of a fired finding of this rule after its facts.
        var findingTail: [UInt8] {
            var t: [UInt8] = Array(#""outcome":"fired","points":"#.utf8) + Array(String(points).utf8)
            t += Array(#","rule":"#.utf8); JSONValue.writeString(id, into: &t)
            t += Array(#","severity":"#.utf8); JSONValue.writeString(severity.rawValue, into: &t)
            t.append(UInt8(ascii: "}"))
            return t
        }
    }

    /// The rules a criterion counts toward, and how many criteria of how many they need.
    public struct Threshold: Sendable, Hashable {
        public let rules: [String]
        public let atLeast: Int
        public let of: Int
    }

    public let id: String
    public let version: String
    public let title: String
    public let source: String?
    public let rules: [Rule]
    /// ISO country codes where the pack binds in law; elsewhere it is a benchmark.
    public let bindingIn: Set<String>
    /// Keys the pack uses that the engine no longer needs (it derives what they said), each
    /// with what to do; the pack still compiles.
    public let warnings: [CompileError]
    /// The pack's canonical JSON, exactly what `sha256` is computed over and what is stored.
    public let canonicalText: String
    public let sha256: [UInt8]
    /// Every condition of the pack, flattened for evaluation.
    let program: ConditionProgram
    /// The pack's definitions as compiled, in the numbering of `Condition.ref` (for tests).
    let definitions: [Condition]
    /// The numbering of fields the conditions use.
    let table: FieldTable
    /// Canonical JSON of a pack result between its findings (or not_in_force) and its questions.
    let resultMiddle: [UInt8]
    /// Canonical JSON of each rule's fired finding after its facts.
    let findingTails: ByteTable
    /// Per rule, as plain values for the scoring loop.
    struct Scoring: Sendable {
        let root: Int32
        let severity: Verdict
        let points: Int
        let appliesFrom: CalendarDate?
    }
    let scoring: [Scoring]
    /// Per rule, the fields its condition tests outside any `not`: what makes it fire, as
    /// against its exceptions (a question about the former is asked first).
    let coreFields: [FieldSet]
    /// Per rule, its place among the pack's rule ids in byte order (for ranking questions).
    let idOrder: [Int32]
    /// `bindingIn`'s two-letter codes as a bit set over `CountryCode` (676 bits).
    let bindingCodes: [UInt64]

    public var sha256Hex: String { sha256.hexString }

    /// Where a pack is wrong: a JSON path (`rules[3].when.all[1].field`) and what to do.
    public struct CompileError: Error, CustomStringConvertible, Sendable, Hashable {
        public let path: String
        public let message: String
        /// 1-based line in the pack file, when known.
        public var line: Int?
        public init(path: String, message: String, line: Int? = nil) { self.path = path; self.message = message; self.line = line }
        public var description: String {
            let place = [line.map { "line \($0)" }, path.isEmpty ? nil : path].compactMap { $0 }.joined(separator: ", ")
            return place.isEmpty ? message : "\(place): \(message)"
        }
    }

    /// Parses and compiles a pack; errors carry the JSON path and the line in `text`.
    public convenience init(json text: String, schema: RecordSchema = .deployment) throws(CompileError) {
        let parsed: (value: JSONValue, lines: [String: Int])
        do { parsed = try JSONParser.parseWithLines(text) } catch {
            let (line, column) = text.lineAndColumn(ofByte: error.offset)
            throw CompileError(path: "", message: "not valid JSON: \(error.message) (column \(column))", line: line)
        }
        do { try self.init(document: parsed.value, schema: schema) } catch {
            throw Self.locate(error, parsed.lines)
        }
    }

    /// The error with the line of its path (or of the nearest enclosing path) in the file.
    static func locate(_ error: CompileError, _ lines: [String: Int]) -> CompileError {
        var located = error
        var path = error.path
        while located.line == nil {
            if let line = lines[path] { located.line = line; break }
            guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            path = String(path[..<cut])
        }
        return located
    }

    /// Every problem of a pack file, up to `limit`, each with its line and path: what
    /// `criteria validate` lists (compiling stops at the first). Empty: the pack compiles.
    public static func problems(json text: String, schema: RecordSchema = .deployment, limit: Int = 50) -> [CompileError] {
        let parsed: (value: JSONValue, lines: [String: Int])
        do { parsed = try JSONParser.parseWithLines(text) } catch {
            let (line, column) = text.lineAndColumn(ofByte: error.offset)
            return [CompileError(path: "", message: "not valid JSON: \(error.message) (column \(column))", line: line)]
        }
        let document = parsed.value
        let structural = RecordSchema.criteriaPack.validate(document, limit: limit)
        if !structural.isEmpty {
            return structural.map { locate(CompileError(path: $0.field, message: $0.message), parsed.lines) }
        }
        var found: [CompileError] = []
        var compiler = ConditionCompiler(schema: schema)
        if case .object(let definitions)? = document["definitions"] {
            for (name, body) in definitions { compiler.sources[name] = body }
            for (name, _) in definitions {
                do { _ = try compiler.definition(name, at: "definitions.\(name)") } catch { found.append(error) }
            }
        }
        var seen: Set<String> = []
        if case .array(let ruleDocs)? = document["rules"] {
            for (i, doc) in ruleDocs.enumerated() {
                let at = "rules[\(i)]"
                if let id = doc["id"]?.stringValue, !seen.insert(id).inserted {
                    found.append(CompileError(path: "\(at).id", message: "duplicate rule id \"\(id)\"; rule ids must be unique in a pack"))
                }
                if let when = doc["when"] {
                    do { _ = try compiler.compile(when, at: "\(at).when") } catch { found.append(error) }
                }
            }
        }
        if found.isEmpty {
            // Whatever else compiling checks.
            do { _ = try CriteriaPack(document: document, schema: schema) } catch { found.append(error) }
        }
        return Array(found.prefix(limit)).map { locate($0, parsed.lines) }
    }

    /// The line in `text` of a JSON path (or of the nearest enclosing path that has one).
    public static func line(ofPath path: String, in text: String) -> Int? {
        guard let parsed = try? JSONParser.parseWithLines(text) else { return nil }
        return locate(CompileError(path: path, message: ""), parsed.lines).line
    }

    /// The pack's warnings, each with its line in `text`; empty when it has none or does not parse.
    public static func warnings(json text: String, schema: RecordSchema = .deployment) -> [CompileError] {
        guard let parsed = try? JSONParser.parseWithLines(text), let pack = try? CriteriaPack(document: parsed.value, schema: schema) else { return [] }
        return pack.warnings.map { locate($0, parsed.lines) }
    }

    public init(document: JSONValue, schema: RecordSchema = .deployment) throws(CompileError) {
        if let violation = RecordSchema.criteriaPack.validate(document, limit: 1).first {
            throw CompileError(path: violation.field, message: violation.message)
        }
        id = document["id"]!.stringValue!
        version = document["version"]!.stringValue!
        title = document["title"]!.stringValue!
        source = document["source"]?.stringValue
        if case .array(let codes)? = document["binding_in"] {
            bindingIn = Set(codes.compactMap(\.stringValue))
        } else {
            bindingIn = []
        }
        var warnings: [CompileError] = []
        let aggregation = document["aggregation"] ?? .object([])
        for key in ["blocking_severities", "unknown_weight"] where aggregation[key] != nil {
            warnings.append(CompileError(path: "aggregation.\(key)", message: Self.redundant[key]!))
        }

        var compiler = ConditionCompiler(schema: schema)
        if case .object(let definitions)? = document["definitions"] {
            for (name, body) in definitions { compiler.sources[name] = body }
            // Definitions may refer to each other in any order (stored packs are canonical,
            // with sorted keys); each is compiled once, cycles are refused.
            for (name, _) in definitions { _ = try compiler.definition(name, at: "definitions.\(name)") }
        }
        guard case .array(let ruleDocs)? = document["rules"], !ruleDocs.isEmpty else {
            throw CompileError(path: "rules", message: "a pack needs at least one rule")
        }
        var parsed: [(id: String, doc: JSONValue, points: Int, appliesFrom: CalendarDate?, condition: Condition)] = []
        var seen: Set<String> = []
        for (i, doc) in ruleDocs.enumerated() {
            let at = "rules[\(i)]"
            let ruleID = doc["id"]!.stringValue!
            guard seen.insert(ruleID).inserted else {
                throw CompileError(path: "\(at).id", message: "duplicate rule id \"\(ruleID)\"; rule ids must be unique in a pack")
            }
            let condition = try compiler.compile(doc["when"]!, at: "\(at).when")
            for key in ["blocks_verdict", "report_unknown"] where doc[key] != nil {
                warnings.append(CompileError(path: "\(at).\(key)", message: Self.redundant[key]!))
            }
            guard case .number(let points)? = doc["points"] else { throw CompileError(path: "\(at).points", message: "points missing") }
            var appliesFrom: CalendarDate? = nil
            if let text = doc["applies_from"]?.stringValue {
                guard let date = CalendarDate(text) else {
                    throw CompileError(path: "\(at).applies_from", message: "\"\(text)\" is not a date; write the day the rule applies from as YYYY-MM-DD")
                }
                appliesFrom = date
            }
            parsed.append((ruleID, doc, Int(points), appliesFrom, condition))
        }
        self.warnings = warnings
        let bindingSet = bindingIn
        let program = ConditionProgram(definitions: compiler.compiled, rules: parsed.map(\.condition))
        definitions = compiler.compiled
        let thresholds = Self.thresholds(parsed.map(\.id), program)
        let rules = parsed.enumerated().map { i, rule in
            Rule(id: rule.id, title: rule.doc["title"]!.stringValue!, citation: rule.doc["citation"]!.stringValue!,
                 severity: Verdict(rawValue: rule.doc["severity"]!.stringValue!)!, points: rule.points,
                 rationale: rule.doc["rationale"]!.stringValue!, remediation: rule.doc["remediation"]!.stringValue!,
                 appliesFrom: rule.appliesFrom, threshold: thresholds[i], condition: rule.condition,
                 fields: compiler.fields(of: rule.condition).sorted())
        }
        self.rules = rules
        findingTails = ByteTable(rules.map(\.findingTail))
        self.program = program
        coreFields = program.ruleRoots.map { Self.coreFields(of: $0, program) }
        var order = [Int32](repeating: 0, count: rules.count)
        for (n, i) in rules.indices.sorted(by: { rules[$0].id.utf8.lexicographicallyPrecedes(rules[$1].id.utf8) }).enumerated() { order[i] = Int32(n) }
        idOrder = order
        scoring = rules.indices.map { i in
            Scoring(root: program.ruleRoots[i], severity: rules[i].severity, points: rules[i].points, appliesFrom: rules[i].appliesFrom)
        }
        var codes = [UInt64](repeating: 0, count: 11)
        for code in bindingSet {
            let bytes = Array(code.utf8)
            if bytes.count == 2, let n = CountryCode(bytes[0], bytes[1]) { codes[Int(n) >> 6] |= 1 << UInt64(n & 63) }
        }
        bindingCodes = codes
        table = compiler.table
        canonicalText = document.canonicalString
        sha256 = Array(SHA256.hash(data: Array(canonicalText.utf8)))
        var middle: [UInt8] = Array(#","pack":{"id":"#.utf8)
        JSONValue.writeString(id, into: &middle)
        middle += Array(#","sha256":""#.utf8) + Array(sha256.hexString.utf8) + Array(#"","version":"#.utf8)
        JSONValue.writeString(version, into: &middle)
        middle += Array(#"},"questions":"#.utf8)
        resultMiddle = middle
    }
}

extension CriteriaPack {
    /// What each key the engine no longer needs said, and why it is not needed.
    static let redundant: [String: String] = [
        "blocking_severities": "no longer used: an assessment gives the settled verdict and the worst case, so no severity needs to block the verdict; remove the key",
        "unknown_weight": "no longer used: the score is the points of fired rules and worst_case_score the points the open facts could add; remove the key",
        "blocks_verdict": "no longer used: an open rule never erases the settled verdict, it makes the worst case; remove the key",
        "report_unknown": "no longer used: an open rule is asked about when it could change the verdict, and not otherwise; remove the key",
    ]

    /// The fields tested under an even number of `not`s from `root`.
    static func coreFields(of root: Int32, _ program: ConditionProgram) -> FieldSet {
        var fields = FieldSet()
        var stack: [(node: Int32, negated: Bool)] = [(root, false)]
        while let (index, negated) = stack.popLast() {
            let node = program.nodes[Int(index)]
            switch node.kind {
            case .leaf: if !negated { fields.insert(Int(node.value)) }
            case .not: stack.append((program.children[Int(node.first)], !negated))
            default: for c in Int(node.first)..<Int(node.first + node.count) { stack.append((program.children[c], negated)) }
            }
        }
        return fields
    }

    /// Marks the rules that are criteria of a threshold: a rule whose condition is a part of an
    /// `at_least` that other rules test counts toward those rules.
    static func thresholds(_ ids: [String], _ program: ConditionProgram) -> [Threshold?] {
        func cone(_ root: Int32) -> Set<Int32> {
            var seen: Set<Int32> = [], stack = [root]
            while let node = stack.popLast() {
                guard seen.insert(node).inserted else { continue }
                let n = program.nodes[Int(node)]
                stack += program.children[Int(n.first)..<Int(n.first + n.count)]
            }
            return seen
        }
        let cones = program.ruleRoots.map(cone)
        var found = [Threshold?](repeating: nil, count: ids.count)
        for (a, node) in program.nodes.enumerated() where node.kind == .atLeast {
            let parts = Set(program.children[Int(node.first)..<Int(node.first + node.count)])
            let users = ids.indices.filter { cones[$0].contains(Int32(a)) && program.ruleRoots[$0] != Int32(a) }.map { ids[$0] }
            guard !users.isEmpty else { continue }
            for i in ids.indices where parts.contains(program.ruleRoots[i]) {
                found[i] = Threshold(rules: users, atLeast: Int(node.value), of: Int(node.count))
            }
        }
        return found
    }
}

/// Compiles condition documents, checking every field path and enum value against the
/// record schema, so that a typo in a pack is an error, not a rule that never fires.
struct ConditionCompiler {
    let schema: RecordSchema
    let table: FieldTable
    var sources: [String: JSONValue] = [:]
    private(set) var compiled: [Condition] = []
    private var numbers: [String: Int] = [:]
    private var inProgress: Set<String> = []
    typealias CompileError = CriteriaPack.CompileError

    init(schema: RecordSchema) {
        self.schema = schema
        table = schema === RecordSchema.deployment ? .deployment : FieldTable(schema: schema)
    }

    /// Field paths a condition reads, through definitions.
    func fields(of condition: Condition) -> Set<String> {
        switch condition {
        case .all(let parts), .any(let parts), .atLeast(_, let parts): parts.reduce(into: Set()) { $0.formUnion(fields(of: $1)) }
        case .not(let inner): fields(of: inner)
        case .leaf(let field, _): [table.fields[field].path]
        case .ref(let i): fields(of: compiled[i])
        }
    }

    mutating func definition(_ name: String, at path: String) throws(CompileError) -> Condition {
        if let done = numbers[name] { return .ref(done) }
        guard let source = sources[name] else {
            let known = sources.keys.sorted().joined(separator: ", ")
            throw CompileError(path: path, message: "no definition named \"\(name)\" (definitions: \(known.isEmpty ? "none" : known))")
        }
        guard inProgress.insert(name).inserted else {
            throw CompileError(path: path, message: "definition \"\(name)\" refers to itself through its references")
        }
        let condition = try compile(source, at: "definitions.\(name)")
        inProgress.remove(name)
        compiled.append(condition)
        numbers[name] = compiled.count - 1
        return .ref(compiled.count - 1)
    }

    mutating func compile(_ doc: JSONValue, at path: String) throws(CompileError) -> Condition {
        guard case .object(let members) = doc, !members.isEmpty else {
            throw CompileError(path: path, message: "a condition must be a non-empty object")
        }
        let keys = Set(members.map(\.key))
        if keys == ["all"] || keys == ["any"] {
            let key = members[0].key
            guard case .array(let list) = members[0].value, !list.isEmpty else {
                throw CompileError(path: "\(path).\(key)", message: "\"\(key)\" holds a non-empty array of conditions")
            }
            var parts: [Condition] = []
            for (i, part) in list.enumerated() { parts.append(try compile(part, at: "\(path).\(key)[\(i)]")) }
            return key == "all" ? .all(parts) : .any(parts)
        }
        if keys == ["not"] { return .not(try compile(doc["not"]!, at: "\(path).not")) }
        if keys == ["at_least", "of"] {
            guard case .array(let list)? = doc["of"], !list.isEmpty else {
                throw CompileError(path: "\(path).of", message: "\"of\" holds a non-empty array of conditions")
            }
            guard case .number(let n)? = doc["at_least"], n.rounded() == n, n >= 1, Int(n) <= list.count else {
                throw CompileError(path: "\(path).at_least", message: "\"at_least\" must be a whole number from 1 to the number of conditions in \"of\"")
            }
            var parts: [Condition] = []
            for (i, part) in list.enumerated() { parts.append(try compile(part, at: "\(path).of[\(i)]")) }
            return .atLeast(Int(n), parts)
        }
        if keys == ["ref"] {
            guard let name = doc["ref"]?.stringValue else {
                throw CompileError(path: "\(path).ref", message: "\"ref\" names a definition")
            }
            return try definition(name, at: "\(path).ref")
        }
        guard keys.contains("field") else {
            throw CompileError(path: path, message: "expected \"all\", \"any\", \"not\", \"at_least\"/\"of\", \"ref\", or a \"field\" test; found \(keys.sorted().joined(separator: ", "))")
        }
        guard let fieldName = doc["field"]?.stringValue else {
            throw CompileError(path: "\(path).field", message: "\"field\" must be a dotted field path such as \"system.type\"")
        }
        guard let fieldSchema = schema.property(atPath: fieldName) else {
            throw CompileError(path: "\(path).field", message: "\"\(fieldName)\" is not a field of the deployment schema")
        }
        let operators = members.filter { $0.key != "field" }
        guard operators.count == 1, let (op, operand) = operators.first.map({ ($0.key, $0.value) }) else {
            throw CompileError(path: path, message: "a field test has exactly one operator besides \"field\" (equals, in, contains, contains_any, contains_all, exists, gt, gte, lt, lte)")
        }
        let at = "\(path).\(op)"
        guard let field = table.index[fieldName] else {
            throw CompileError(path: "\(path).field", message: "\"\(fieldName)\" is not a leaf field of the deployment schema")
        }
        let symbols = table.fields[field].values
        func checkValue(_ value: JSONValue) throws(CompileError) {
            if let allowed = fieldSchema.allowedValues {
                guard let s = value.stringValue, allowed.contains(s) else {
                    throw CompileError(path: at, message: "\(value.canonicalString) is not a value of \(fieldName) (allowed: \(allowed.joined(separator: ", ")))")
                }
            }
        }
        func list(_ value: JSONValue) throws(CompileError) -> [JSONValue] {
            guard case .array(let items) = value, !items.isEmpty else { throw CompileError(path: at, message: "\"\(op)\" takes a non-empty array") }
            for item in items { try checkValue(item) }
            return items
        }
        /// Enum values as a bit mask, when the field has a small enum.
        func mask(_ values: [JSONValue]) -> UInt64? {
            guard !symbols.isEmpty else { return nil }
            var bits: UInt64 = 0
            for v in values {
                guard let s = v.stringValue, let i = symbols.firstIndex(of: s) else { return nil }
                bits |= 1 << UInt64(i)
            }
            return bits
        }
        func needsArray() throws(CompileError) {
            guard fieldSchema.isArray else { throw CompileError(path: at, message: "\"\(op)\" needs an array field; \(fieldName) is not one (use equals or in)") }
        }
        switch op {
        case "equals":
            try checkValue(operand)
            if case .bool(let b) = operand { return .leaf(field, .boolEquals(b)) }
            return .leaf(field, mask([operand]).map { .symbolIn($0) } ?? .equals(operand))
        case "in":
            let options = try list(operand)
            return .leaf(field, mask(options).map { .symbolIn($0) } ?? .isIn(options))
        case "contains":
            try needsArray(); try checkValue(operand)
            return .leaf(field, mask([operand]).map { .anyOf($0) } ?? .contains(operand))
        case "contains_any":
            try needsArray()
            let options = try list(operand)
            return .leaf(field, mask(options).map { .anyOf($0) } ?? .containsAny(options))
        case "contains_all":
            try needsArray()
            let options = try list(operand)
            return .leaf(field, mask(options).map { .allOf($0) } ?? .containsAll(options))
        case "exists":
            guard case .bool(let b) = operand else { throw CompileError(path: at, message: "\"exists\" takes true or false") }
            return .leaf(field, .exists(b))
        default:
            guard let comparison = Condition.Comparison(rawValue: op) else {
                throw CompileError(path: at, message: "unknown operator \"\(op)\" (use equals, in, contains, contains_any, contains_all, exists, gt, gte, lt, lte)")
            }
            guard case .number(let bound) = operand else { throw CompileError(path: at, message: "\"\(op)\" takes a number") }
            return .leaf(field, .compare(comparison, bound))
        }
    }
}

extension CriteriaPack {
    /// The packs that ship with Oversight, from `Schemas/packs/`.
    public static let builtIn: [CriteriaPack] = EmbeddedSchemas.files
        .filter { $0.name.hasSuffix(".json") && !$0.name.hasSuffix(".schema.json") && !$0.name.hasSuffix(".evidence.json") }
        .map { file in
            do { return try CriteriaPack(json: file.text) } catch {
                fatalError("built-in pack \(file.name) does not compile: \(error)")
            }
        }

    public static func builtIn(id: String) -> CriteriaPack? { builtIn.first { $0.id == id } }
}

extension RecordSchema {
    /// The criteria-pack schema from `Schemas/criteria-pack.schema.json`, embedded at build time.
    public static let criteriaPack = embedded("criteria-pack.schema.json")
}

extension Sequence where Element == UInt8 {
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in self { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 0xF)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// The bytes written as hex digits (either case), nil if it is not an even run of them.
    public init?(hex: some StringProtocol) {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let high = value(digits[i]), let low = value(digits[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
            i += 2
        }
        self = bytes
    }
}

extension String {
    /// 1-based line and column of a byte offset in this text's UTF-8.
    public func lineAndColumn(ofByte offset: Int) -> (line: Int, column: Int) {
        var line = 1, column = 1
        for (i, byte) in utf8.enumerated() {
            if i >= offset { break }
            if byte == 0x0A { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }
}
