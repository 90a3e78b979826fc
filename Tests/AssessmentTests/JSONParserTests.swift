import Foundation
import Testing
import TestSupport
@testable import Assessment

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(#"{"a": [1, -2.5, 3e2, true, false, null], "b": "x\"y\\z\n\u00e9\ud83d\ude00", "c": {}}"#)
        #expect(value["a"] == .array([.number(1), .number(-2.5), .number(300), .bool(true), .bool(false), .null]))
        #expect(value["b"] == .string("x\"y\\z\né😀"))
        #expect(value["c"] == .object([]))
    }

    @Test(arguments: [
        ("", "unexpected end of input"),
        ("{", "expected a string key"),
        ("{\"a\":1,}", "expected a string key"),
        ("[1,]", "unexpected character"),
        ("{\"a\":1 \"b\":2}", "expected ',' or '}'"),
        ("{\"a\":1,\"a\":2}", "duplicate key"),
        ("01", "leading zero"),
        ("\"\\x\"", "invalid escape"),
        ("\"\\ud800\"", "unpaired UTF-16 surrogate"),
        ("\"a\u{01}\"", "control character"),
        ("tru", "literal"),
        ("1 2", "unexpected data after"),
        ("1e999", "out of range"),
    ])
    func rejectsMalformedText(text: String, expected: String) {
        #expect {
            _ = try JSONParser.parse(text)
        } throws: { error in
            (error as? JSONSyntaxError)?.message.contains(expected) == true
        }
    }

    @Test func reportsTheByteOffset() {
        do {
            _ = try JSONParser.parse("{\"a\": tx}")
            Issue.record("expected an error")
        } catch {
            #expect(error.offset == 6)
        }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }

    @Test func limitsNesting() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        #expect(throws: Never.self) { _ = try JSONParser.parse(fine) }
    }

    @Test func canonicalFormSortsKeysAndIsStable() throws {
        let a = try JSONParser.parse(#"{"b": 1, "a": {"y": [2.0, "é"], "x": null}}"#)
        let b = try JSONParser.parse(#"{ "a" : { "x":null,"y":[2,"\u00e9"] } , "b":1.0 }"#)
        #expect(a.canonicalString == #"{"a":{"x":null,"y":[2,"é"]},"b":1}"#)
        #expect(a.canonicalBytes == b.canonicalBytes)
        #expect(try JSONParser.parse(a.canonicalString) == a)
    }

    @Test func canonicalFormEscapesControlCharacters() throws {
        let value = JSONValue.string("tab\tquote\"nul\u{0}")
        #expect(value.canonicalString == #""tab\tquote\"nul\u0000""#)
        #expect(try JSONParser.parse(value.canonicalString) == value)
    }

    /// Keys in byte order are checked against the last key only; every other order, and keys
    /// that are not ASCII, against all of them, as Strings (canonical equivalence).
    @Test(arguments: [
        (#"{"a":1,"b":2,"a":3}"#, true),
        (#"{"b":1,"a":2,"b":3}"#, true),
        (#"{"a":1,"b":2,"c":3}"#, false),
        (#"{"c":1,"b":2,"a":3}"#, false),
        (#"{"a":1,"ab":2,"b":3,"ab":4}"#, true),
        ("{\"\u{E9}\":1,\"e\u{301}\":2}", true),
        ("{\"e\u{301}\":1,\"f\":2,\"\u{E9}\":3}", true),
        ("{\"a\":1,\"\\u0062\":2,\"b\":3}", true),
        ("{\"\u{212A}\":1,\"K\":2}", true),
    ])
    func findsDuplicateKeysInAnyOrder(text: String, duplicate: Bool) {
        let threw = (try? JSONParser.parse(text)) == nil
        #expect(threw == duplicate, "\(text)")
    }

    /// Short integers are read without strtod; they must read as strtod reads them.
    @Test func integersReadAsStrtodReadsThem() throws {
        var random = SplitMix64(seed: 5)
        var texts = ["0", "-0", "7", "-7", "999999999999999", "-999999999999999", "1000000000000000", "9007199254740993",
                     "123456789012345678901234567890", "1.5", "-2e3", "10E-2"]
        for _ in 0..<2_000 {
            let digits = Int(random.next() % 18) + 1
            var text = random.next() % 2 == 0 ? "-" : ""
            text += String(Int(random.next() % 9) + 1)
            for _ in 1..<digits { text += String(random.next() % 10) }
            texts.append(text)
        }
        for text in texts {
            guard case .number(let n) = try JSONParser.parse(text) else { Issue.record("\(text) is not a number"); continue }
            let expected = strtod(text, nil)
            #expect(n.bitPattern == expected.bitPattern, "\(text): \(n) vs \(expected)")
        }
    }

    @Test func reportsTheLongestString() throws {
        var shape = JSONParser.Shape()
        _ = try JSONParser.parse(Array(#"{"abc":"de","f":["ghijk",{"lmnopqr":1}],"s":"\u00e9\n"}"#.utf8), shape: &shape)
        #expect(shape.longestString == 7)
        _ = try JSONParser.parse(Array(#"["\u00e9\u00e9\u00e9\u00e9"]"#.utf8), shape: &shape)
        #expect(shape.longestString == 8)
    }

    /// A text the parser calls canonical is byte for byte its canonical form (workers then hash
    /// the stored bytes instead of writing the record again); canonical records are recognised.
    @Test func canonicalTextsAreRecognisedExactly() throws {
        var texts: [[UInt8]] = SyntheticDeployments(count: 500, seed: 3).map(\.canonicalBytes)
        let recognised = try texts.filter { text in
            var shape = JSONParser.Shape()
            _ = try JSONParser.parse(text, shape: &shape)
            return shape.isCanonical
        }
        #expect(recognised.count == texts.count)
        texts += [
            #"{"a":1}"#, #"{"a": 1}"#, #" {"a":1}"#, #"{"a":1} "#, #"{"b":1,"a":2}"#, #"{"a":-0}"#, #"{"a":-1}"#, #"{"a":1.0}"#,
            #"{"a":1.5}"#, #"{"a":1e2}"#, #"{"a":1234567890123456}"#, #"{"a":"x\"y"}"#, #"{"a":"\u0041"}"#, #"{"a":"\/"}"#,
            #"{"a":"\n"}"#, #"{"a":"é"}"#, "{\"é\":1,\"a\":2}", "{\"a\":1,\"é\":2}", #"{"a":[1,{"c":true,"b":null}]}"#,
            #"{"a":[1,{"b":null,"c":true}]}"#, #"[]"#, #"{}"#, #"[{}]"#, #"{"":0,"a":""}"#, #"{"a":{"b":{"c":[false]}}}"#,
        ].map { Array($0.utf8) }
        for text in texts {
            var shape = JSONParser.Shape()
            let value = try JSONParser.parse(text, shape: &shape)
            if shape.isCanonical { #expect(text == value.canonicalBytes, "\(String(decoding: text, as: UTF8.self))") }
        }
    }
}
