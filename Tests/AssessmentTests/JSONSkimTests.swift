import Testing
import Assessment

/// The skimmer reads what the parser reads, and refuses what the parser refuses.
@Suite struct JSONSkimTests {
    /// Strings are read eight bytes at a time: a quote, a backslash, a control character or a
    /// byte past ASCII at any place in a long string is still seen, as the parser sees it.
    @Test func everyByteThatMattersIsSeenAtEveryOffset() throws {
        for special: [UInt8] in [[0x22], [0x5C, 0x6E], [0x5C, 0x75, 0x30, 0x30, 0x34, 0x31], [0x0A], [0x00], [0x1F], [0xC3, 0xA9], [0xFF], [0x7F]] {
            for offset in 0..<20 {
                var text = Array(#"{"k":""#.utf8) + Array(repeating: UInt8(ascii: "a"), count: offset) + special
                text += Array(repeating: UInt8(ascii: "b"), count: 20) + Array(#"","z":1}"#.utf8)
                let parsed = try? JSONParser.parse(text)
                let skimmed = JSONSkim(text).members()
                #expect((parsed == nil) == (skimmed == nil), "\(special) at \(offset)")
                if let parsed, let skimmed, case .object(let expected) = parsed {
                    #expect(skimmed.count == expected.count, "\(special) at \(offset)")
                    #expect(try JSONParser.parse(text[skimmed[0].value]) == expected[0].value, "\(special) at \(offset)")
                }
            }
        }
    }

    /// Every member of every result and record the engine makes, skimmed, is the parser's.
    @Test func membersAreTheParsersOnRealResultsAndRecords() throws {
        let set = CriteriaSet.builtIn
        for record in SyntheticDeployments(count: 300, seed: 11) {
            let result = set.assess(record, asOf: CalendarDate("2026-12-01")!)
            for text in [result.canonicalBytes, record.canonicalBytes] {
                let parsed = try JSONParser.parse(text)
                guard case .object(let expected) = parsed else { Issue.record("not an object"); continue }
                let skim = JSONSkim(text)
                let members = try #require(skim.members())
                #expect(members.map { String(decoding: $0.key, as: UTF8.self) } == expected.map(\.key))
                for (member, want) in zip(members, expected) {
                    #expect(try JSONParser.parse(text[member.value]) == want.value)
                }
                let expanded = try #require(skim.members(expanding: "packs"))
                #expect(expanded.members.map(\.value) == members.map(\.value))
                if case .array? = parsed["packs"] {
                    let packsRange = try #require(skim.member("packs") ?? nil)
                    #expect(expanded.elements != nil && expanded.elements == skim.elements(of: packsRange))
                } else {
                    #expect(expanded.elements == nil)
                }
                if case .array(let packs)? = parsed["packs"], let range = (skim.member("packs") ?? nil) {
                    for validated in [false, true] {
                        let elements = try #require(skim.elements(of: range, validated: validated))
                        #expect(elements.count == packs.count)
                        for (element, pack) in zip(elements, packs) {
                            #expect((skim.member("applies", of: element, validated: validated) ?? nil).flatMap(skim.string) == pack["applies"]?.stringValue)
                            let inner = try #require(skim.members(of: element, validated: validated))
                            guard case .object(let want) = pack else { continue }
                            #expect(inner.map { String(decoding: $0.key, as: UTF8.self) } == want.map(\.key))
                            for (member, value) in zip(inner, want.map(\.value)) { #expect(try JSONParser.parse(text[member.value]) == value) }
                        }
                    }
                }
            }
        }
    }

    @Test func valuesDecodeAsTheParserDecodesThem() throws {
        let text = Array(#"{ "a" : "plain", "b":"esc\"aped\u00e9", "c":-1.5e3, "d":true, "e":null, "f":[1,{"g":"]"}], "h":{} , "i":"ünï"}"#.utf8)
        let skim = JSONSkim(text)
        #expect((skim.member("a") ?? nil).flatMap(skim.string) == "plain")
        #expect((skim.member("b") ?? nil).flatMap(skim.string) == "esc\"apedé")
        #expect((skim.member("c") ?? nil).flatMap(skim.value) == .number(-1500))
        #expect((skim.member("d") ?? nil).flatMap(skim.value) == .bool(true))
        #expect((skim.member("e") ?? nil).flatMap(skim.value) == .null)
        #expect((skim.member("i") ?? nil).flatMap(skim.string) == "ünï")
        #expect((skim.member("c") ?? nil).flatMap(skim.string) == nil, "a number is not a string")
        #expect(skim.member("zz") == .some(nil), "absent")
        let f = try #require((skim.member("f") ?? nil))
        #expect(skim.elements(of: f)?.count == 2)
        #expect(skim.elements(of: try #require((skim.member("h") ?? nil))) == nil, "an object is not an array")
        // Keys out of canonical order, or named twice at any depth, are left to the parser.
        for text in [#"{"a":1,"a":2}"#, #"{"b":1,"a":2}"#, #"{"a":{"x":1,"x":2}}"#, #"{"a":[{"y":1,"x":2}]}"#, #"{"a":{"\u0078":1}}"#] {
            #expect(JSONSkim(Array(text.utf8)).members() == nil, "\(text)")
        }
        #expect((try? JSONParser.parse(#"{"a":{"x":1,"x":2}}"#)) == nil, "the parser refuses a key named twice")
    }

    /// Text the parser refuses is never skimmed: the caller falls back to the parser's error.
    @Test func invalidTextIsRefused() {
        let invalid = [
            #"{"a":1"#, #"{"a":1,}"#, #"{"a" 1}"#, #"{"a":tru}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":-}"#, #"{"a":1e}"#,
            #"{"a":[1,,2]}"#, #"{"a":[1 2]}"#, #"{"a":{"b"}}"#, #"{"a":{"b":1,}}"#, #"{"a":"\x"}"#, #"{"a":"\u12"}"#,
            "{\"a\":\"tab\there\"}", #"{"a":[}"#, #"{"a":1} x"#, #"[1]"#, #"{"a":"\ud800"}"#, "",
        ]
        for text in invalid {
            #expect(JSONSkim(Array(text.utf8)).members() == nil, "\(text)")
        }
        let badUTF8: [UInt8] = Array(#"{"a":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect(JSONSkim(badUTF8).members() == nil)
        #expect((try? JSONParser.parse(badUTF8)) == nil)
        // Every one of them the parser refuses too (but an array, which is JSON and not an
        // object, and the lone surrogate, which the skimmer leaves to the parser).
        for text in invalid where !text.contains("ud800") && text != "[1]" {
            #expect((try? JSONParser.parse(text)) == nil, "\(text)")
        }
    }
}
