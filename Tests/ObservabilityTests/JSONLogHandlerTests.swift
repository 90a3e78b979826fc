import Foundation
import Logging
import Testing
@testable import Observability

/// Lines a handler wrote, collected.
final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

@Suite struct JSONLogHandlerTests {
    func logger(_ lines: Lines) -> Logger {
        var logger = Logger(label: "oversight.coordinator") { JSONLogHandler(label: $0, sink: { lines.append($0) }) }
        logger.logLevel = .debug
        return logger
    }

    func object(_ line: String) throws -> [String: Any] {
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1, "one object, one line: \(line)")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func eachEventIsOneObjectWithItsMetadataAsKeys() throws {
        let lines = Lines()
        var log = logger(lines)
        log[metadataKey: "worker"] = "w-1"
        log.info("batch sealed", metadata: ["batch": "5b894ec8-0000-4000-8000-000000000001", "seal": "\(2)"])
        let fields = try object(try #require(lines.all.first))
        #expect(fields["message"] as? String == "batch sealed")
        #expect(fields["level"] as? String == "info")
        #expect(fields["service"] as? String == "oversight.coordinator")
        #expect(fields["batch"] as? String == "5b894ec8-0000-4000-8000-000000000001")
        #expect(fields["seal"] as? String == "2")
        #expect(fields["worker"] as? String == "w-1")
        let stamp = try #require(fields["timestamp"] as? String)
        #expect(stamp.count == 24 && stamp.hasSuffix("Z") && ISO8601DateFormatter.withFractions.date(from: stamp) != nil, "\(stamp)")
    }

    @Test func hostileTextStaysInsideItsString() throws {
        let lines = Lines()
        let log = logger(lines)
        let nasty = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} line separator \u{2028} é 🛰"
        log.warning("\(nasty)", metadata: ["error": "\(nasty)", "message": "shadow", "nested": ["a": ["1", "2"]]])
        let fields = try object(try #require(lines.all.first))
        #expect(fields["message"] as? String == nasty)
        #expect(fields["error"] as? String == nasty)
        #expect(fields["field_message"] as? String == "shadow", "a metadata key never replaces a reserved one")
        #expect(((fields["nested"] as? [String: Any])?["a"] as? [String]) == ["1", "2"])
    }

    @Test func linesOfManyThreadsNeverMix() throws {
        let lines = Lines()
        let log = logger(lines)
        DispatchQueue.concurrentPerform(iterations: 8) { n in
            for i in 0..<200 { log.info("thread \(n) line \(i)", metadata: ["batch": "\(n)"]) }
        }
        #expect(lines.all.count == 1600)
        for line in lines.all { _ = try object(line) }
    }
}

extension ISO8601DateFormatter {
    static var withFractions: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}

@Suite struct MetricsEndpointTests {
    @Test func listenAddressesAreHostAndPort() {
        #expect(MetricsEndpoint.parse("127.0.0.1:9464")! == ("127.0.0.1", 9464))
        #expect(MetricsEndpoint.parse("[::1]:9464")! == ("::1", 9464))
        #expect(MetricsEndpoint.parse("0.0.0.0:0")! == ("0.0.0.0", 0))
        for bad in ["9464", ":9464", "host:", "host:99999", "host:port", ""] {
            #expect(MetricsEndpoint.parse(bad) == nil, "\(bad)")
        }
    }
}
