import Testing
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
}
