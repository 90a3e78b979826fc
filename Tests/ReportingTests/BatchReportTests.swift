import Testing
@testable import Reporting

@Suite struct BatchReportTests {
    @Test func recordTextIsEscapedForXHTML() {
        #expect(HTMLWriter.escape(#"<script>alert("x") & 'y'</script>"#) == "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;")
        // Characters XML forbids even escaped become U+FFFD; text and newlines stay.
        #expect(HTMLWriter.escape("a\u{0}b\u{1B}c\nd") == "a\u{FFFD}b\u{FFFD}c\nd")
        #expect(HTMLWriter.escape("Müller – São Paulo") == "Müller – São Paulo")
    }

    @Test func aChartDrawsEveryNumberItIsGiven() {
        let svg = SVGChart.bars(id: "t", title: "T <x>", items: [("prohibited", 2), ("minimal", 358), ("a\"b", 0)], colours: BatchReport.colours)
        #expect(svg.contains(#"data-label="prohibited" data-value="2""#) && svg.contains(#"data-label="minimal" data-value="358""#))
        #expect(svg.contains(#"data-label="a&quot;b" data-value="0""#) && svg.contains("T &lt;x&gt;"))
        // The longest bar is the largest number; each number is written beside its bar.
        #expect(svg.contains(##"width="260" height="15" fill="#15803d""##))
        #expect(svg.contains(">358</text>") && svg.contains(">2</text>") && svg.contains(">0</text>"))
        #expect(SVGChart.bars(id: "e", title: "E", items: [], colours: [:]).contains("no records"))
    }

    @Test func totalsFollowSeverityOrder() {
        let counts = [BatchReport.Count(key: "", verdict: "minimal", worstCase: "prohibited", records: 3),
                      BatchReport.Count(key: "", verdict: "prohibited", worstCase: "prohibited", records: 1),
                      BatchReport.Count(key: "", verdict: "minimal", worstCase: nil, records: 2)]
        #expect(BatchReport.totals(counts) { $0.verdict }.map(\.label) == ["prohibited", "minimal"])
        #expect(BatchReport.totals(counts) { $0.verdict }.map(\.value) == [1, 5])
        #expect(BatchReport.totals(counts) { $0.worstCase }.map(\.label) == ["prohibited", "not recorded"])
        #expect(BatchReport.verdictText("limited", "prohibited") == "limited — could be prohibited" && BatchReport.verdictText("minimal", "minimal") == "minimal")
    }
}
