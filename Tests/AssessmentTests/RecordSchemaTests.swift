import Testing
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
