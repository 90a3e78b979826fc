import Foundation
import Testing
import TestSupport

/// `--log-format json`: the coordinator's and the workers' logs through a whole batch, read
/// back line by line as a log store would.
@Suite struct LogFormatTests {
    @Test func jsonLogsParseLineByLineWithTheBatchAsAKey() throws {
        let system = try RunningSystem(workers: 2, label: "jsonlogs", extra: ["--log-format", "json"])
        let file = try temporaryFile("jsonlogs.jsonl", (0..<500).map { n in
            #"{"id":"json-\#(n)","system":{"name":"Cam \#(n)","vendor":"Acme"},"deployment":{"country":"NL","operator":"City"}}"#
        }.joined(separator: "\n"))
        let submitted = try system.submit(file)
        let statuses = system.stop()
        #expect(submitted.status == 0, "\(submitted.stderr)\n\(system.logs)")
        #expect(statuses.allSatisfy { $0 == 0 }, "\(statuses)\n\(system.logs)")
        let batch = try #require(batchID(fromSubmitLog: submitted.stdout + "\n" + submitted.stderr), "\(submitted.stdout)")

        var byService: [String: [[String: Any]]] = [:]
        for process in [system.coordinator!] + system.workers {
            let lines = process.log.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            #expect(!lines.isEmpty, "\(process.logPath) logged nothing")
            for (number, line) in lines.enumerated() {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                guard let object else { Issue.record("\(process.logPath) line \(number + 1) is not a JSON object: \(line)"); continue }
                for key in ["timestamp", "level", "message", "service"] {
                    #expect(object[key] is String, "\(process.logPath) line \(number + 1) has no \(key): \(line)")
                }
                byService[object["service"] as? String ?? "", default: []].append(object)
            }
        }
        let coordinator = byService["oversight.coordinator"] ?? []
        #expect(coordinator.contains { $0["batch"] as? String == batch && $0["message"] as? String == "batch sealed" },
                "the coordinator's seal line names the batch as a key: \(coordinator.map { $0["message"] ?? "" })")
        #expect(coordinator.contains { $0["worker"] as? String == "e2e-1" && $0["message"] as? String == "worker ready" })
        #expect(!(byService["oversight.worker"] ?? []).isEmpty, "\(byService.keys)")
        // Secrets stay out, as in the plain format: no password file's password in any line.
        let passfile = try #require(TestDatabase.passfile(of: system.conninfo), "the test database is reached with a password file")
        let password = try #require(try String(contentsOfFile: passfile, encoding: .utf8).split(separator: "\n").first?.split(separator: ":").last)
        #expect(password.count >= 8 && !system.logs.contains(String(password)), "a password in the logs")
    }
}
