import Foundation
import Testing
import Assessment
import LibPQ
import TestSupport

@Suite struct BenchCommandTests {
    /// The whole bench, small: every figure the issue names is in the JSON file, measured (not
    /// zero), and the ceiling's scratch schema is gone afterwards.
    @Test func benchWritesEveryFigure() throws {
        let conninfo = try TestDatabase.create("bench")
        let directory = NSTemporaryDirectory() + "oversight-bench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let json = directory + "/bench.json"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let result = try OversightBinary.runSplit(["bench", "--records", "3000", "--workers", "2", "--micro-records", "1000",
                                                   "--rounds", "1", "--database", conninfo, "--data-dir", directory, "--json", json],
                                                  timeout: 300)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("assessments_per_second"))
        let figures = try JSONParser.parse(try String(contentsOfFile: json, encoding: .utf8))
        for key in ["assessments_per_second", "ceiling_per_second", "ratio", "p50_ms", "p99_ms", "coordinator_peak_rss_mib",
                    "worker_1_peak_rss_mib", "worker_2_peak_rss_mib", "cpu_seconds_per_1000_oversight",
                    "cpu_seconds_per_1000_with_postgres", "scoring_per_second_one_core", "wire_codec_jobs_per_second_one_core",
                    "record_decoding_per_second_one_core", "intake_validation_per_second_one_core",
                    "scoring_with_canonical_output_per_second_one_core", "small_batch_visible_ms_median",
                    "seal_seconds", "verify_seconds", "listed_seconds", "wal_bytes_per_assessment", "table_bytes_per_assessment",
                    "table_bytes_per_assessment_assessments"] {
            guard case .number(let value)? = figures[key] else { Issue.record("\(key) missing"); continue }
            #expect(value > 0, "\(key)")
        }
        #expect(figures["records"] == .number(3000))
        let db = try PGConnection(conninfo)
        #expect(try db.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'oversight_bench_ceiling'").int(0, 0) == 0)
        // A 10-record batch at a quarter, a half and three quarters of the big one, as far as the
        // bench saw it running there (3,000 records may go by between two looks).
        guard case .number(let underLoad)? = figures["small_batches_under_load"] else { Issue.record("small_batches_under_load missing"); return }
        #expect((0...3).contains(underLoad))
        if underLoad > 0, case .number(let ms)? = figures["small_batch_under_load_visible_ms"] { #expect(ms > 0) }
        #expect(try db.query("SELECT count(*) FROM oversight.assessments").int(0, 0) == 3000 + (5 + Int(underLoad)) * 10,
                "the batch, the small ones beside it and five small ones after")

        // A second run in the same directory reads only its own logs (it waits for "worker ready"
        // in the coordinator's log; an earlier run's lines started the clock too soon).
        let again = try OversightBinary.runSplit(["bench", "--records", "1000", "--workers", "2", "--micro-records", "1000",
                                                  "--rounds", "1", "--database", conninfo, "--data-dir", directory], timeout: 300)
        #expect(again.status == 0, "\(again.stderr)")
        let log = try String(contentsOfFile: directory + "/logs/coordinator.log", encoding: .utf8)
        #expect(log.components(separatedBy: "coordinator listening").count - 1 == 1, "\(log)")
    }
}
