import Crypto
import Foundation

/// Facts read from a record's free text, as data: phrases that state or imply a fact, and a
/// register of what public sources document about vendors' products. An inferred fact carries
/// the field, the value, the exact span of text it rests on, the pattern (or register entry)
/// and whether the text states or implies it. Compiled once; `infer` is pure.
public final class EvidencePack: Sendable {
    public enum Strength: String, Sendable, Hashable { case stated, implied }

    public struct Pattern: Sendable {
        public let id: String
        public let field: String
        public let value: JSONValue
        public let strength: Strength
        /// The text fields searched: `summary`, `system.name`, `system.vendor`.
        public let sources: [String]
        /// Any of these phrases (case-insensitive, whole words) makes the match…
        public let phrases: [String]
        /// …when the same sentence also has one of these (if any are given).
        public let with: [String]
        /// Only for records whose system.type is one of these (if any are given).
        public let types: [String]
    }

    /// What a public source documents about a product, and where.
    public struct RegisterEntry: Sendable {
        public let id: String
        /// The vendor as the Atlas writes it, in every spelling seen (matched case-insensitively,
        /// punctuation and company suffixes aside).
        public let vendors: [String]
        /// Only for records whose system.type is one of these (if any are given): a vendor
        /// sells several products, and an entry is about one.
        public let types: [String]
        public let field: String
        public let value: JSONValue
        public let strength: Strength
        public let document: String
        public let publisher: String
        public let date: String
        public let url: String
        /// The passage of the source that supports the fact, as read.
        public let passage: String
    }

    public let id: String
    public let version: String
    public let title: String
    public let patterns: [Pattern]
    public let register: [RegisterEntry]
    /// Words that, shortly before a phrase in its sentence, negate it ("does not use …").
    public let negations: [String]
    public let canonicalText: String
    public let sha256: [UInt8]
    public var sha256Hex: String { sha256.hexString }

    public typealias CompileError = CriteriaPack.CompileError

    public convenience init(json text: String) throws(CompileError) {
        let parsed: (value: JSONValue, lines: [String: Int])
        do { parsed = try JSONParser.parseWithLines(text) } catch {
            let (line, column) = text.lineAndColumn(ofByte: error.offset)
            throw CompileError(path: "", message: "not valid JSON: \(error.message) (column \(column))", line: line)
        }
        do { try self.init(document: parsed.value) } catch { throw CriteriaPack.locate(error, parsed.lines) }
    }

    public init(document: JSONValue, schema: RecordSchema = .deployment) throws(CompileError) {
        if let violation = RecordSchema.evidencePack.validate(document, limit: 1).first {
            throw CompileError(path: violation.field, message: violation.message)
        }
        id = document["id"]!.stringValue!
        version = document["version"]!.stringValue!
        title = document["title"]!.stringValue!
        negations = Self.strings(document["negations"]).map { $0.lowercased() }
        func checkValue(_ field: String, _ value: JSONValue, at path: String) throws(CompileError) {
            guard let property = schema.property(atPath: field), property.properties.isEmpty else {
                throw CompileError(path: "\(path).field", message: "\"\(field)\" is not a leaf field of the deployment schema")
            }
            let probe = JSONValue.object([])
            var record = probe
            record.set(path: field.split(separator: ".").map(String.init), value)
            if let problem = schema.validate(record, limit: 1).first {
                throw CompileError(path: "\(path).value", message: "\(value.canonicalString) is not a value of \(field): \(problem.message)")
            }
        }
        var seen: Set<String> = []
        var patterns: [Pattern] = []
        if case .array(let docs)? = document["patterns"] {
            for (i, doc) in docs.enumerated() {
                let at = "patterns[\(i)]"
                let pid = doc["id"]!.stringValue!
                guard seen.insert(pid).inserted else { throw CompileError(path: "\(at).id", message: "duplicate pattern id \"\(pid)\"") }
                let field = doc["field"]!.stringValue!
                try checkValue(field, doc["value"]!, at: at)
                let phrases = Self.strings(doc["phrases"])
                guard !phrases.isEmpty, phrases.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
                    throw CompileError(path: "\(at).phrases", message: "a pattern needs at least one non-empty phrase")
                }
                let sources = Self.strings(doc["in"]).isEmpty ? ["summary"] : Self.strings(doc["in"])
                patterns.append(Pattern(id: pid, field: field, value: doc["value"]!,
                                        strength: Strength(rawValue: doc["strength"]!.stringValue!)!, sources: sources,
                                        phrases: phrases.map { $0.lowercased() }, with: Self.strings(doc["with"]).map { $0.lowercased() },
                                        types: Self.strings(doc["types"])))
            }
        }
        var entries: [RegisterEntry] = []
        if case .array(let docs)? = document["register"] {
            for (i, doc) in docs.enumerated() {
                let at = "register[\(i)]"
                let rid = doc["id"]!.stringValue!
                guard seen.insert(rid).inserted else { throw CompileError(path: "\(at).id", message: "duplicate id \"\(rid)\"") }
                let field = doc["field"]!.stringValue!
                try checkValue(field, doc["value"]!, at: at)
                let source = doc["source"]!
                entries.append(RegisterEntry(id: rid, vendors: Self.strings(doc["vendors"]).map(Self.vendorKey), types: Self.strings(doc["types"]),
                                             field: field, value: doc["value"]!,
                                             strength: Strength(rawValue: doc["strength"]!.stringValue!)!,
                                             document: source["document"]!.stringValue!, publisher: source["publisher"]!.stringValue!,
                                             date: source["date"]!.stringValue!, url: source["url"]!.stringValue!,
                                             passage: source["passage"]!.stringValue!))
            }
        }
        self.patterns = patterns
        self.register = entries
        canonicalText = document.canonicalString
        sha256 = Array(SHA256.hash(data: Array(canonicalText.utf8)))
    }

    static func strings(_ value: JSONValue?) -> [String] {
        guard case .array(let items)? = value else { return [] }
        return items.compactMap(\.stringValue)
    }

    /// A vendor name as matched: lower case, letters and digits in words, without company
    /// suffixes ("Clearview AI, Inc." and "clearview ai" are one).
    static func vendorKey(_ name: String) -> String {
        let words = name.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
        let suffixes: Set<String> = ["inc", "llc", "ltd", "corp", "corporation", "co", "company", "gmbh", "sa", "plc"]
        return words.filter { !suffixes.contains($0) }.joined(separator: " ")
    }
}

/// One fact read from a record's text or found in the register.
public struct InferredFact: Sendable, Hashable {
    public let field: String
    public let value: JSONValue
    /// The exact text it rests on: a substring of `source`'s text, or the register's passage.
    public let span: String
    /// Which text field (`summary`, `system.vendor`, …), or `register:ENTRY`.
    public let source: String
    public let pattern: String
    public let strength: EvidencePack.Strength

    public var json: JSONValue {
        .object([("field", .string(field)), ("pattern", .string(pattern)), ("source", .string(source)),
                 ("span", .string(span)), ("strength", .string(strength.rawValue)), ("value", value)])
    }

    public init(field: String, value: JSONValue, span: String, source: String, pattern: String, strength: EvidencePack.Strength) {
        self.field = field; self.value = value; self.span = span; self.source = source; self.pattern = pattern; self.strength = strength
    }

    public init?(_ json: JSONValue) {
        guard let field = json["field"]?.stringValue, let value = json["value"], let span = json["span"]?.stringValue,
              let source = json["source"]?.stringValue, let pattern = json["pattern"]?.stringValue,
              let strength = json["strength"]?.stringValue.flatMap(EvidencePack.Strength.init(rawValue:)) else { return nil }
        self.init(field: field, value: value, span: span, source: source, pattern: pattern, strength: strength)
    }
}

extension EvidencePack {
    /// The facts the record's text states or implies, and those the register documents for its
    /// vendor, in pattern order; negated mentions are skipped.
    public func infer(_ record: JSONValue) -> [InferredFact] {
        var found: [InferredFact] = []
        let type = record["system"]?["type"]?.stringValue
        for pattern in patterns {
            if !pattern.types.isEmpty, !pattern.types.contains(type ?? "") { continue }
            for source in pattern.sources {
                guard let text = Self.text(of: source, in: record), let span = match(pattern, in: text) else { continue }
                found.append(InferredFact(field: pattern.field, value: pattern.value, span: span, source: source,
                                          pattern: pattern.id, strength: pattern.strength))
                break
            }
        }
        if let vendor = record["system"]?["vendor"]?.stringValue {
            let named = Set(vendor.split { $0 == "," || $0 == "/" || $0 == ";" }.map { Self.vendorKey(String($0)) })
            for entry in register where entry.vendors.contains(where: named.contains) && (entry.types.isEmpty || entry.types.contains(type ?? "")) {
                found.append(InferredFact(field: entry.field, value: entry.value, span: entry.passage, source: "register:\(entry.id)",
                                          pattern: entry.id, strength: entry.strength))
            }
        }
        return found
    }

    static func text(of source: String, in record: JSONValue) -> String? {
        var value: JSONValue? = record
        for key in source.split(separator: ".") { value = value?[String(key)] }
        return value?.stringValue
    }

    /// The first occurrence of one of the pattern's phrases, as a whole-word match whose
    /// sentence has one of `with` (when given) and no negation shortly before it: the exact
    /// text of the occurrence.
    func match(_ pattern: Pattern, in text: String) -> String? {
        let lower = text.lowercased()
        // Lower-casing can change lengths outside ASCII; then the span cannot be cut exactly.
        guard lower.count == text.count else { return nil }
        let lowerChars = Array(lower), chars = Array(text)
        for phrase in pattern.phrases {
            let needle = Array(phrase)
            var start = 0
            while let at = Self.find(needle, in: lowerChars, from: start) {
                start = at + 1
                let end = at + needle.count
                if at > 0, Self.isWordCharacter(lowerChars[at - 1]) { continue }
                if end < lowerChars.count, Self.isWordCharacter(lowerChars[end]) { continue }
                let sentence = Self.sentence(around: at, end, in: lowerChars)
                if !pattern.with.isEmpty, !pattern.with.contains(where: { Self.find(Array($0), in: Array(lowerChars[sentence]), from: 0) != nil }) {
                    continue
                }
                if negated(before: at, in: lowerChars, sentenceStart: sentence.lowerBound) { continue }
                return String(chars[at..<end])
            }
        }
        return nil
    }

    /// Whether one of the negation words is among the five words before `at` in its sentence.
    func negated(before at: Int, in chars: [Character], sentenceStart: Int) -> Bool {
        let before = String(chars[sentenceStart..<at])
        let words = before.split { !$0.isLetter && $0 != "'" }.suffix(5).map(String.init)
        return words.contains { word in negations.contains(word) || word.hasSuffix("n't") }
    }

    static func isWordCharacter(_ c: Character) -> Bool { c.isLetter || c.isNumber }

    static func find(_ needle: [Character], in haystack: [Character], from: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        var i = from
        while i <= haystack.count - needle.count {
            if haystack[i] == needle[0], haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    /// The sentence holding `start..<end`: from after the previous full stop, question or
    /// exclamation mark (followed by a space) to the next.
    static func sentence(around start: Int, _ end: Int, in chars: [Character]) -> Range<Int> {
        var lower = start
        while lower > 0 {
            if ".!?".contains(chars[lower - 1]), lower < chars.count, chars[lower] == " " { break }
            lower -= 1
        }
        var upper = end
        while upper < chars.count {
            if ".!?".contains(chars[upper]), upper + 1 == chars.count || chars[upper + 1] == " " { break }
            upper += 1
        }
        return lower..<upper
    }
}

extension EvidencePack {
    /// The pack as each inferred fact names it: id, version and SHA-256.
    public var pin: String { "\(id) \(version) sha256:\(sha256Hex)" }

    /// The record with the facts its text states (and, with `all`, implies) in its `inferred`
    /// list, each naming this pack; unchanged with `off` or when nothing is found.
    public func annotate(_ record: JSONValue, _ use: EvidenceUse) -> JSONValue {
        guard use != .off else { return record }
        let facts = infer(record).filter { use == .all || $0.strength == .stated }
        guard !facts.isEmpty else { return record }
        var annotated = record
        annotated.set(path: ["inferred"], .array(facts.map { fact in
            guard case .object(var members) = fact.json else { return fact.json }
            members.append(("pack", .string(pin)))
            return .object(members)
        }))
        return annotated
    }
}

extension RecordSchema {
    /// The evidence-pack schema from `Schemas/evidence-pack.schema.json`, embedded at build time.
    public static let evidencePack = embedded("evidence-pack.schema.json")
}

extension EvidencePack {
    /// The evidence pack that ships with Oversight (`Schemas/atlas.evidence.json`).
    public static let builtIn: EvidencePack = {
        guard let text = EmbeddedSchemas.text(named: "atlas.evidence.json") else { fatalError("atlas.evidence.json was not embedded") }
        do { return try EvidencePack(json: text) } catch { fatalError("the built-in evidence pack does not compile: \(error)") }
    }()
}
