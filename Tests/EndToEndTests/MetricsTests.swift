import Foundation
import Testing
import ChildProcess
import LibPQ
import TestSupport

/// `--metrics`: a real Prometheus server (Debian's) scrapes an active coordinator, a standby and
/// two workers through a batch; its HTTP API must give the counts PostgreSQL has. The exposition
/// passes `promtool check metrics`; `/healthz` and `/readyz` answer on every process, standby
/// included (leadership is a metric, not readiness).
@Suite(.serialized) struct MetricsTests {
    static func get(_ url: String) throws -> (status: Int, body: String) {
        let (status, output) = try ChildProcess.run(["/usr/bin/curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10", url])
        guard status == 0, let last = output.split(separator: "\n").last, let code = Int(last) else { return (0, output) }
        return (code, String(output.dropLast(last.count + 1)))
    }

    /// The value of `series` (a name with its labels, as exposed) in a scrape; nil if absent.
    static func value(_ series: String, in exposition: String) -> Double? {
        exposition.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// Deploy/observability/alerts.yml: valid rules, and each alert fires (and stays quiet) where
    /// its unit test in alerts_test.yml says.
    @Test func theAlertRulesCheckAndPassTheirUnitTests() throws {
        let directory = FileManager.default.currentDirectoryPath + "/Deploy/observability"
        let check = try ChildProcess.run(["/usr/bin/promtool", "check", "rules", directory + "/alerts.yml"])
        #expect(check.0 == 0, "\(check.1)")
        #expect(check.1.contains("SUCCESS: 5 rules found"), "\(check.1)")
        let test = try ChildProcess.run(["/bin/sh", "-c", "cd '\(directory)' && /usr/bin/promtool test rules alerts_test.yml"])
        #expect(test.0 == 0, "\(test.1)")
    }

    @Test func prometheusScrapesTheFleetAndItsCountsAreWhatPostgresHas() throws {
        let conninfo = try TestDatabase.create("metrics")
        let directory = NSTemporaryDirectory() + "oversight-metrics-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ports = (0..<4).map { _ in freeLoopbackPort() }
        let endpoints = (0..<4).map { _ in "tcp://127.0.0.1:\(freeLoopbackPort())" }
        func coordinator(_ n: Int) throws -> RunningProcess {
            try RunningProcess(["coordinator", "--database", conninfo, "--worker-endpoint", endpoints[n * 2], "--client-endpoint", endpoints[n * 2 + 1],
                                "--heartbeat-interval", "200", "--metrics", "127.0.0.1:\(ports[n])"], logPath: directory + "/coordinator-\(n).log")
        }
        let active = try coordinator(0)
        defer { active.stop() }
        try active.waitForLog("coordinator listening")
        let standby = try coordinator(1)
        defer { standby.stop() }
        try standby.waitForLog("standby")
        let workers = try (2..<4).map { n in
            try RunningProcess(["worker", "--coordinator", "\(endpoints[0]),\(endpoints[2])", "--database", conninfo, "--name", "metrics-\(n)",
                                "--heartbeat-interval", "200", "--metrics", "127.0.0.1:\(ports[n])"], logPath: directory + "/worker-\(n).log")
        }
        defer { workers.forEach { $0.stop() } }
        for process in [active, standby] + workers { try process.waitForLog("metrics listening") }

        // Prometheus, scraping all four every second.
        let prometheusPort = freeLoopbackPort()
        let targets = ports.map { "'127.0.0.1:\($0)'" }.joined(separator: ", ")
        try """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: oversight
                static_configs:
                  - targets: [\(targets)]
            """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = ["--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/tsdb",
                                "--web.listen-address=127.0.0.1:\(prometheusPort)", "--log.level=warn"]
        prometheus.standardOutput = FileHandle.nullDevice
        prometheus.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: { FileManager.default.createFile(atPath: directory + "/prometheus.log", contents: nil); return directory + "/prometheus.log" }()))
        try prometheus.run()
        defer { prometheus.terminate(); prometheus.waitUntilExit() }
        let api = "http://127.0.0.1:\(prometheusPort)/api/v1"
        try waitUntil("Prometheus scrapes all four targets", within: 60) {
            let targets = try Self.get(api + "/targets").body
            return targets.components(separatedBy: "\"health\":\"up\"").count - 1 == 4
        }

        let file = directory + "/batch.jsonl"
        try writeRecords(3_000, seed: 71, to: file)
        let submitted = try OversightBinary.runSplit(["submit", file, "--coordinator", "\(endpoints[1]),\(endpoints[3])", "--wait"], timeout: 180)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let batch = try #require(batchID(fromSubmitLog: submitted.stdout))
        let assessed = try PGConnection(conninfo).query("SELECT count(*) FROM oversight.assessments WHERE batch_id = \(batch)::uuid").int(0, 0) ?? -1
        #expect(assessed == 3_000)

        // Through Prometheus: what the fleet says it did is what PostgreSQL holds.
        func query(_ expression: String) throws -> Double? {
            let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
            let body = try Self.get(api + "/query?query=" + encoded).body
            guard let data = body.data(using: .utf8), let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let result = (json["data"] as? [String: Any])?["result"] as? [[String: Any]], let first = result.first,
                  let value = first["value"] as? [Any], let text = value.last as? String else { return nil }
            return Double(text)
        }
        let logs = ([active, standby] + workers).map { "--- \($0.logPath)\n\($0.log)" }.joined(separator: "\n")
        try waitUntil("Prometheus has the committed count PostgreSQL has", within: 60) {
            try query(#"sum(oversight_jobs_total{outcome="committed"})"#) == Double(assessed)
        }
        try waitUntil("and the records the workers scored", within: 60) {
            try query("sum(oversight_worker_records_scored_total)") == Double(assessed)
        }
        #expect(try query(#"sum(oversight_jobs_total{outcome="dispatched"})"#) == Double(assessed), "\(logs)")
        #expect(try query(#"sum(oversight_jobs_total{outcome="dead_lettered"})"#) == 0)
        #expect(try query(#"oversight_coordinator_leader{instance="127.0.0.1:\#(ports[0])"}"#) == 1)
        #expect(try query(#"oversight_coordinator_leader{instance="127.0.0.1:\#(ports[1])"}"#) == 0)
        try waitUntil("the active coordinator counts both workers", within: 30) {
            try query(#"oversight_workers_connected{instance="127.0.0.1:\#(ports[0])"}"#) == 2
        }
        #expect(try query("sum(oversight_worker_commit_seconds_count)") ?? 0 >= 1)
        // Every job went out once and came back from the worker it was leased to.
        #expect(try query("sum(oversight_job_seconds_count)") == Double(assessed))
        #expect(try query("sum(oversight_bundle_seconds_count)") ?? 0 >= Double(assessed) / 256)
        #expect(try query("count(oversight_build_info)") == 4)
        #expect(try query(#"sum(oversight_intake_records_total{outcome="accepted"})"#) == Double(assessed))
        #expect(try query(#"sum(oversight_intake_records_total{outcome="rejected"})"#) == 0)
        try waitUntil("the seal is counted", within: 30) { try query("sum(oversight_seal_seconds_count)") == 1 }
        #expect(try query("max(oversight_last_seal_timestamp_seconds)") ?? 0 > Date().timeIntervalSince1970 - 600)

        // The dashboard's and the alerts' expressions name only series the fleet exposes, and
        // each of the dashboard's queries runs on this Prometheus.
        var exposed: Set<String> = []
        for port in ports {
            for line in try Self.get("http://127.0.0.1:\(port)/metrics").body.split(separator: "\n") where !line.hasPrefix("#") {
                exposed.insert(String(line.prefix { $0 != "{" && $0 != " " }))
            }
        }
        let observability = FileManager.default.currentDirectoryPath + "/Deploy/observability"
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: observability + "/grafana-dashboard.json"))) as? [String: Any])
        let expressions = ((dashboard["panels"] as? [[String: Any]]) ?? []).flatMap { ($0["targets"] as? [[String: Any]]) ?? [] }.compactMap { $0["expr"] as? String }
        #expect(expressions.count >= 10)
        let alerts = try String(contentsOfFile: observability + "/alerts.yml", encoding: .utf8)
        let named = try Regex("oversight_[a-z_]+")
        for text in expressions + [alerts] {
            for match in text.matches(of: named) {
                let name = String(text[match.range])
                #expect(exposed.contains(name) || exposed.contains(name + "_bucket"), "\(name) is not exposed by the fleet: \(exposed.sorted())")
            }
        }
        for expression in expressions {
            let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
            let answer = try Self.get(api + "/query?query=" + encoded).body
            #expect(answer.contains("\"status\":\"success\""), "\(expression): \(answer)")
        }

        // The exposition itself passes promtool's lint, and every process is alive and ready.
        for port in ports {
            let scrape = try Self.get("http://127.0.0.1:\(port)/metrics")
            #expect(scrape.status == 200)
            let check = try ChildProcess.run(["/bin/sh", "-c", "curl -s http://127.0.0.1:\(port)/metrics | /usr/bin/promtool check metrics"])
            #expect(check.0 == 0, "promtool check metrics on :\(port): \(check.1)")
            #expect(try Self.get("http://127.0.0.1:\(port)/healthz").status == 200)
            let ready = try Self.get("http://127.0.0.1:\(port)/readyz")
            #expect(ready.status == 200, "readyz on :\(port): \(ready.body)")
        }
        // Killed, the active one gives way: the standby leads, and says so.
        kill(active.process.processIdentifier, SIGKILL)
        try waitUntil("the standby leads", within: 60) {
            let scrape = try Self.get("http://127.0.0.1:\(ports[1])/metrics").body
            return Self.value("oversight_coordinator_leader", in: scrape) == 1
        }
        #expect(try Self.get("http://127.0.0.1:\(ports[1])/readyz").status == 200)
    }
}
