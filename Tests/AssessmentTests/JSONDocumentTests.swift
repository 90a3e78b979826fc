import Testing
@testable import Assessment

@Suite struct JSONDocumentTests {
    func records(_ text: String) throws -> [(Int64, String)] {
        try JSONDocument.records(Array(text.utf8)).map { ($0.line, String(decoding: $0.bytes, as: UTF8.self)) }
    }

    @Test func onePrettyPrintedRecordIsOneRecord() throws {
        let text = "{\n  \"id\": \"a\",\n  \"system\": {\n    \"type\": \"alpr\"\n  }\n}\n"
        let found = try records(text)
        #expect(found.count == 1)
        #expect(found[0].0 == 1)
        #expect(try JSONParser.parse(found[0].1)["id"] == .string("a"))
    }

    @Test func anArrayGivesEachRecordWithTheLineItStartsOn() throws {
        let text = "\u{FEFF}[\n  {\"id\": \"a\", \"notes\": \"a } ] , \\\" tricky\"},\n\n  {\n    \"id\": \"b\"\n  }\n]\n"
        let found = try records(text)
        #expect(found.map(\.0) == [2, 4])
        #expect(try JSONParser.parse(found[0].1)["notes"] == .string("a } ] , \" tricky"))
        #expect(try JSONParser.parse(found[1].1)["id"] == .string("b"))
        #expect(try records("[]").isEmpty)
        #expect(try records("  \n ").isEmpty)
    }

    @Test func valuesOneAfterAnotherAreRecordsToo() throws {
        #expect(try records("{\"id\":1}\n{\"id\":2}\n").map(\.0) == [1, 2])
    }

    @Test func brokenStructureNamesItsLine() {
        #expect { _ = try records("[\n{\"id\": 1},\n{\"id\": 2\n") } throws: { ($0 as? JSONDocument.Malformed)?.line == 3 }
        #expect { _ = try records("[{\"a\":1} {\"b\":2}]") } throws: { "\($0)".contains("expected , or ]") }
        #expect { _ = try records("{\"a\": \"never closed}") } throws: { ($0 as? JSONDocument.Malformed)?.line == 1 }
        #expect { _ = try records("}") } throws: { "\($0)".contains("without its opening") }
    }
}
