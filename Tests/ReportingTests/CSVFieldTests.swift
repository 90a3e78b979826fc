import Testing
import Reporting

@Suite struct CSVFieldTests {
    @Test func fieldsAreQuotedAndFormulasNeutralised() {
        #expect(CSVField.quote("plain") == "plain")
        #expect(CSVField.quote("a,b") == "\"a,b\"")
        #expect(CSVField.quote("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(CSVField.quote("two\nlines") == "\"two\nlines\"")
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            #expect(CSVField.quote(formula).hasPrefix("'") || CSVField.quote(formula).hasPrefix("\"'"), "\(formula)")
        }
        #expect(CSVField.quote("=HYPERLINK(\"http://evil\")") == "\"'=HYPERLINK(\"\"http://evil\"\")\"")
        #expect(CSVField.quote("ünï-code") == "ünï-code")
        #expect(CSVField.line(["1", "a,b", ""]) == "1,\"a,b\",\n")
    }
}
