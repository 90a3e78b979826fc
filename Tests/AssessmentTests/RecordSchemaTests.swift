import Foundation
import Testing
import TestSupport
@testable import Assessment

@Suite struct RecordSchemaTests {
    func violation(_ text: String) -> SchemaViolation? {
        if case .invalid(let v) = RecordCheck.check(Array(text.utf8)) { return v }
        return nil
    }

    @Test func acceptsAnEmptyRecordBecauseEveryFieldIsOptional() {
        #expect(violation("{}") == nil)
    }

    @Test func acceptsAFullRecord() {
        #expect(violation(#"{"id":"x","operator":{"kind":"law_enforcement","country":"DE"},"system":{"type":"facial_recognition","inferred_attributes":["emotion"]},"context":{"settings":["workplace"],"people_affected_per_day":10},"safeguards":{"human_review":true}}"#) == nil)
    }

    @Test func namesTheFieldOfAnUnknownEnumValue() {
        let v = violation(#"{"system":{"type":"facial"}}"#)
        #expect(v?.field == "system.type")
        #expect(v?.message.contains("facial_recognition") == true)
    }

    @Test func namesUnknownFields() {
        let v = violation(#"{"operator":{"nmae":"x"}}"#)
        #expect(v?.field == "operator.nmae")
        #expect(v?.message.contains("unknown field") == true)
    }

    @Test func checksTypesRangesAndLengths() {
        #expect(violation(#"{"context":{"people_affected_per_day":"many"}}"#)?.field == "context.people_affected_per_day")
        #expect(violation(#"{"context":{"people_affected_per_day":1.5}}"#)?.message.contains("integer") == true)
        #expect(violation(#"{"data":{"retention_days":-1}}"#)?.message.contains("minimum") == true)
        #expect(violation(#"{"operator":{"country":"DEU"}}"#)?.message.contains("longer") == true)
        #expect(violation(#"{"system":{"inferred_attributes":["emotion","mood"]}}"#)?.field == "system.inferred_attributes[1]")
    }

    @Test func rejectsNonObjectsAndBadJSON() {
        #expect(violation("[1]")?.message.contains("JSON object") == true)
        #expect(violation("{\"id\": }")?.message.contains("invalid JSON") == true)
    }

    @Test func refusesUnsupportedSchemaKeywords() throws {
        #expect(throws: RecordSchema.CompileError.self) {
            _ = try RecordSchema(try JSONParser.parse(#"{"type":"object","patternProperties":{}}"#))
        }
    }
}

/// The flattened check that passes records at intake must agree with the schema tree: on
/// generated records and on many mutations of them (wrong types, values out of range or not
/// allowed, unknown and equivalent-looking keys, too many items, required fields removed).
@Suite struct SchemaProgramTests {
    static let pool: [JSONValue] = [
        .null, .bool(true), .bool(false), .number(0), .number(-1), .number(0.5), .number(1), .number(1.5), .number(3),
        .number(1e300), .number(-0.0), .string(""), .string("x"), .string("DE"), .string("de"), .string("DEU"),
        .string("facial_recognition"), .string("emotion"), .string("workplace"), .string("law_enforcement"),
        .string(String(repeating: "é", count: 201)), .string(String(repeating: "a", count: 2001)),
        .array([]), .array([.string("emotion")]), .array([.string("emotion"), .string("gender")]),
        .array([.string("biometric"), .number(1)]), .array(Array(repeating: .string("workplace"), count: 9)),
        .array(Array(repeating: .string("biometric"), count: 33)), .object([]), .object([("kind", .string("law_enforcement"))]),
    ]
    static let keys = ["id", "kind", "country", "type", "nmae", "K", "\u{212A}ind", "e\u{301}", "settings", "categories",
                       "retention_days", "human_review", "sources", ""]

    func mutate(_ value: JSONValue, _ random: inout SplitMix64, depth: Int = 0) -> JSONValue {
        switch value {
        case .object(var members) where !members.isEmpty && random.next() % 3 != 0:
            let i = Int(random.next() % UInt64(members.count))
            switch random.next() % 5 {
            case 0: members.remove(at: i)
            case 1: members[i].value = Self.pool[Int(random.next() % UInt64(Self.pool.count))]
            case 2:
                let key = Self.keys[Int(random.next() % UInt64(Self.keys.count))]
                if !members.contains(where: { $0.key == key }) { members.append((key, Self.pool[Int(random.next() % UInt64(Self.pool.count))])) }
            default: members[i].value = mutate(members[i].value, &random, depth: depth + 1)
            }
            if random.next() % 2 == 0 { members.shuffle(using: &random) }
            return .object(members)
        case .array(var elements) where !elements.isEmpty:
            let i = Int(random.next() % UInt64(elements.count))
            elements[i] = random.next() % 2 == 0 ? Self.pool[Int(random.next() % UInt64(Self.pool.count))] : mutate(elements[i], &random)
            return .array(elements)
        default:
            return depth == 0 ? value : Self.pool[Int(random.next() % UInt64(Self.pool.count))]
        }
    }

    @Test func agreesWithTheSchemaTree() {
        var random = SplitMix64(seed: 77)
        var valid = 0, invalid = 0
        for record in SyntheticDeployments(count: 3_000, seed: 9) {
            var value = record
            for _ in 0..<4 {
                let accepted = SchemaProgram.deployment.accepts(value)
                let violations = RecordSchema.deployment.validate(value)
                #expect(accepted == violations.isEmpty, "\(value.canonicalString): \(violations)")
                if violations.isEmpty { valid += 1 } else { invalid += 1 }
                value = mutate(value, &random)
            }
        }
        // Both kinds must have been seen many times for the agreement to mean anything.
        #expect(valid > 3_000 && invalid > 3_000, "valid \(valid), invalid \(invalid)")
    }

    @Test func namesTheSameViolationAsBefore() {
        // A record the fast check refuses still gets the tree's message, field and all.
        guard case .invalid(let v) = RecordCheck.check(Array(#"{"context":{"people_affected_per_day":-3}}"#.utf8)) else {
            Issue.record("accepted"); return
        }
        #expect(v.field == "context.people_affected_per_day")
        #expect(v.message.contains("below the minimum"))
    }
}

/// The one-pass intake scan must never pass a text that the parser and schema tree refuse, and
/// must pass the ordinary valid records it exists for.
@Suite struct IntakeScanTests {
    static let inserts: [[UInt8]] = [
        [0x20], [0x0A], [0x09], [0x5C], [0x22], [0x2C], [0x3A], [0x7B], [0x7D], [0x5B], [0x5D], [0x30], [0x2D], [0x2E], [0x65],
        [0x7F], [0x01], [0x00], [0xC3, 0xA9], [0xC3], [0xFF], [0x61], [0x75], Array("\\u0041".utf8), Array("\\\"".utf8),
        Array("e\u{301}".utf8), Array("\u{212A}".utf8), Array(",\"id\":\"x\"".utf8), Array("1e400".utf8), Array("-0".utf8),
        Array("1234567890123456789".utf8), Array("0.5".utf8), Array("null".utf8), Array("true".utf8), Array("[]".utf8),
        Array("{}".utf8), Array(",\"nmae\":1".utf8), Array(String(repeating: "x", count: 70).utf8),
    ]

    func mutate(_ text: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var text = text
        for _ in 0..<(1 + Int(random.next() % 3)) where !text.isEmpty {
            let at = Int(random.next() % UInt64(text.count))
            switch random.next() % 4 {
            case 0: text.insert(contentsOf: Self.inserts[Int(random.next() % UInt64(Self.inserts.count))], at: at)
            case 1: text.remove(at: at)
            case 2: text[at] = Self.inserts[Int(random.next() % UInt64(Self.inserts.count))][0]
            default:
                // Replace a value after a colon with another value.
                if let colon = text[at...].firstIndex(of: 0x3A) {
                    let end = text[(colon + 1)...].firstIndex { $0 == 0x2C || $0 == 0x7D } ?? text.count
                    let values = ["\"DE\"", "\"de\"", "\"facial_recognition\"", "\"Facial_recognition\"", "\"\u{212A}\"", "3", "-1",
                                  "1.5", "0.01", "1e2", "true", "null", "[\"emotion\"]", "[]", "{}", "\"\"", "\"e\u{301}\""]
                    text.replaceSubrange((colon + 1)..<end, with: Array(values[Int(random.next() % UInt64(values.count))].utf8))
                }
            }
        }
        return text
    }

    @Test func neverPassesWhatTheParserAndSchemaRefuse() {
        var random = SplitMix64(seed: 1234)
        var limits = RecordLimits()
        var passed = 0, refused = 0, tried = 0
        for record in SyntheticDeployments(count: 2_000, seed: 17) {
            let canonical = record.canonicalBytes
            #expect(SchemaProgram.deployment.scan(canonical, limits: limits), "\(String(decoding: canonical, as: UTF8.self))")
            for round in 0..<10 {
                // Small limits in some rounds, so that the limits themselves are crossed.
                limits.maximumStringBytes = round % 3 == 0 ? 40 : 64 * 1024
                limits.maximumBytes = round % 5 == 0 ? 600 : 1024 * 1024
                // Byte mutations (mostly malformed), or value mutations written out with spaces and
                // shuffled keys (well-formed, often valid).
                let text = round % 2 == 0 ? mutate(canonical, &random)
                    : Array(written(SchemaProgramTests().mutate(record, &random), &random).utf8)
                tried += 1
                guard SchemaProgram.deployment.scan(text, limits: limits) else { refused += 1; continue }
                passed += 1
                if case .invalid(let violation) = RecordCheck.check(text, limits: limits) {
                    Issue.record("scan passed \(String(decoding: text, as: UTF8.self)) which check refuses: \(violation)")
                }
            }
            limits = RecordLimits()
        }
        // Both outcomes must be common for the comparison to mean anything.
        #expect(passed > tried / 5 && refused > tried / 5, "passed \(passed), refused \(refused) of \(tried)")
    }

    /// JSON text with members in the order given and spaces around every separator.
    func written(_ value: JSONValue, _ random: inout SplitMix64) -> String {
        switch value {
        case .object(var members):
            members.shuffle(using: &random)
            return "{ " + members.map { JSONValue.string($0.key).canonicalString + " :\n\t" + written($0.value, &random) }
                .joined(separator: " , ") + " }"
        case .array(let elements):
            return "[ " + elements.map { written($0, &random) }.joined(separator: " ,\r\n ") + " ]"
        default:
            return value.canonicalString
        }
    }

    @Test func passesRecordsWrittenWithWhitespaceAndAnyKeyOrder() throws {
        var random = SplitMix64(seed: 8)
        for record in SyntheticDeployments(count: 300, seed: 5) {
            let text = written(record, &random)
            #expect(SchemaProgram.deployment.scan(Array(text.utf8), limits: RecordLimits()), "\(text)")
            #expect(RecordCheck.validate(Array(text.utf8)) == nil)
        }
    }
}
