import ArgumentParser
import Assessment
import Foundation
import AuditStore

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the whole system on this machine against its own ceiling, and the engine on one core.",
        discussion: """
            In one run: starts a private PostgreSQL cluster (in --data-dir; or uses --database), a coordinator and --workers workers as separate processes; generates --records seeded records (the Atlas of Surveillance's mix of system types) and submits them with the built-in packs. It reports, end to end from the first chunk sent to the last assessment committed (the batch's seal, which follows, is timed apart): assessments per second; p50 and p99 latency from a chunk's acknowledgement to each of its assessments' commit; peak RSS of the coordinator and of each worker; CPU seconds per 1,000 assessments (coordinator and workers, and with PostgreSQL). While the batch runs, at a quarter, a half and three quarters of it, a 10-record batch: milliseconds until all its results are visible (the slowest of the three is small_batch_under_load_visible_ms). After the last commit: seconds until the batch is sealed (seal_seconds), then `audit verify` of it timed (verify_seconds); once the coordinator has summarised it and listed its records, the WAL the whole batch made (pg_current_wal_insert_lsn before the first chunk and after the listing) and the oversight tables' size with indexes and TOAST, each per assessment. Then a 10-record batch on the idle fleet, five times: milliseconds until all its results are visible. A private cluster's run first checks that its disk has room (about 12 kB a record).

            The ceiling: the same records COPY'd into a copy of `jobs` (1,000 per transaction, one connection) and as many result rows COPY'd into a copy of `assessments` (256 per transaction, one connection per worker), with no ZeroMQ and no scoring; the ratio is end to end / ceiling. Micro-benchmarks on one core: scoring, scoring with canonical output, record decoding (parse and schema check into a tree), intake validation (what the coordinator does with each submitted record), wire codec.

            The private cluster is durable (fsync on), like a real one, and its database is created empty for every run, so that runs are comparable. Build with -c release.

            Example:
              swift build -c release && .build/release/oversight bench
              oversight bench --records 100000 --workers 2 --json bench.json
            """)

    @Option(help: "Records in the end-to-end batch.") var records = 1_000_000
    @Option(help: "Worker processes (default: one per core).") var workers = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Use this database instead of a private cluster (it gets a bench batch, and a scratch schema for the ceiling that is dropped).")
    var database: String?
    @Option(help: "Directory of the private cluster, logs and generated records.") var dataDir = ".oversight/bench"
    @Option(help: "Records per micro-benchmark round.") var microRecords = 50_000
    @Option(help: "Rounds per micro-benchmark; the best is reported.") var rounds = 5
    @Flag(help: "Run the micro-benchmarks only.") var microOnly = false
    @Option(help: "Write every figure to this JSON file.") var json: String?

    func validate() throws {
        guard records >= 1_000 else { throw ValidationError("--records must be at least 1000") }
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be between 1 and 64") }
        guard microRecords >= 1_000 else { throw ValidationError("--micro-records must be at least 1000") }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 100") }
        if let database, AuditStore.conninfoHasPassword(database) {
            throw ValidationError("--database contains a password; put it in ~/.pgpass, PGPASSFILE or PGSERVICE")
        }
    }

    func run() throws {
        try runOrExit {
            var figures: [(String, Double)] = []
            printError("micro-benchmarks: \(microRecords) records, best of \(rounds)")
            figures += MicroBenchmarks(records: microRecords, rounds: rounds).run()
            if !microOnly { figures += try systemFigures() }
            printTable(figures)
            if let json {
                let object = JSONValue.object(figures.map { ($0.0, .number(($0.1 * 10_000).rounded() / 10_000)) })
                try (object.canonicalString + "\n").write(toFile: json, atomically: true, encoding: .utf8)
                printError("figures written to \(json)")
            }
        }
    }

    private func systemFigures() throws -> [(String, Double)] {
        let directory = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
        var cluster: LocalCluster?
        let conninfo: String
        if let database {
            conninfo = database
        } else {
            let local = try LocalCluster(dataDirectory: directory + "/cluster")
            // Every run empties the cluster's database, so bench uses only a cluster it made.
            let marker = local.dataDirectory + "/made-by-oversight-bench"
            let exists = FileManager.default.fileExists(atPath: local.pgdata + "/PG_VERSION")
            if exists && !FileManager.default.fileExists(atPath: marker) {
                throw CommandFailure("""
                    \(local.dataDirectory) holds a PostgreSQL cluster that oversight bench did not make; bench empties \
                    its database on every run, so it leaves this one alone. Choose another --data-dir (or, if it is a \
                    bench cluster from before this check, delete that directory).
                    """)
            }
            printError("starting PostgreSQL in \(local.dataDirectory) (port \(local.port))")
            try local.start()
            if !exists { try Data().write(to: URL(fileURLWithPath: marker)) }
            // Every run starts from empty tables: a database holding the batches of earlier runs
            // (15 GB after a dozen) made later runs, and their ceiling, slower and unrepeatable.
            try local.recreateDatabase()
            cluster = local
            conninfo = local.conninfo
        }
        defer { try? cluster?.stop() }
        let admin = try AuditStore(conninfo: conninfo, applicationName: "oversight-bench")
        try admin.migrate()
        if cluster != nil { try checkFreeSpace(directory) }
        // Both phases start from a checkpoint, so that neither pays for the other's WAL.
        func checkpoint() { admin.checkpoint() }
        checkpoint()

        printError("end to end: \(records) records, \(workers) workers (logs in \(directory)/logs)")
        var run = EndToEndRun(conninfo: conninfo, records: records, seed: 42, workers: workers, directory: directory + "/logs")
        run.showProgress = isatty(2) == 1
        let e2e = try run.run()
        printError("ceiling: the same \(records) records and results COPY'd with no ZeroMQ and no scoring")
        checkpoint()
        let ceiling = try Ceiling(conninfo: conninfo, records: records, seed: 42, connections: workers).run()
        let ceilingPerSecond = Double(records) / (ceiling.jobs + ceiling.assessments)
        let perThousand = 1000 / Double(records)
        let small = e2e.smallBatchMilliseconds.sorted()
        let underLoad = e2e.smallBatchUnderLoadMilliseconds.sorted()
        let perRecord = 1 / Double(records)
        let tableBytes = e2e.tableBytes.reduce(0) { $0 + $1.bytes }
        return [
            ("records", Double(records)),
            ("workers", Double(workers)),
            ("end_to_end_seconds", e2e.seconds),
            ("completed_and_sealed_seconds", e2e.sealedSeconds),
            ("assessments_per_second", e2e.assessmentsPerSecond),
            ("ceiling_per_second", ceilingPerSecond),
            ("ceiling_jobs_per_second", Double(records) / ceiling.jobs),
            ("ceiling_assessments_per_second", Double(records) / ceiling.assessments),
            ("ratio", e2e.assessmentsPerSecond / ceilingPerSecond),
            ("p50_ms", e2e.p50Milliseconds),
            ("p99_ms", e2e.p99Milliseconds),
            ("coordinator_peak_rss_mib", e2e.coordinatorPeakRSSMiB),
            ("worker_peak_rss_mib_max", e2e.workerPeakRSSMiB.max() ?? 0),
            ("cpu_seconds_per_1000_oversight", e2e.oversightCPUSeconds * perThousand),
            ("cpu_seconds_per_1000_coordinator", e2e.coordinatorCPUSeconds * perThousand),
            ("cpu_seconds_per_1000_postgres", e2e.postgresCPUSeconds * perThousand),
            ("cpu_seconds_per_1000_with_postgres", (e2e.oversightCPUSeconds + e2e.postgresCPUSeconds) * perThousand),
            ("small_batch_visible_ms_median", small[small.count / 2]),
            ("small_batch_visible_ms_max", small.last ?? 0),
            ("small_batches_under_load", Double(underLoad.count)),
            ("small_batch_under_load_visible_ms", underLoad.last ?? 0),
            ("small_batch_under_load_visible_ms_median", underLoad.isEmpty ? 0 : underLoad[underLoad.count / 2]),
            ("seal_seconds", e2e.sealSeconds),
            ("verify_seconds", e2e.verifySeconds),
            ("listed_seconds", e2e.listedSeconds),
            ("wal_bytes_per_assessment", Double(e2e.walBytes) * perRecord),
            ("wal_full_page_images_per_1000", Double(e2e.fullPageImages) * perThousand),
            ("table_bytes_per_assessment", Double(tableBytes) * perRecord),
        ] + e2e.tableBytes.prefix(6).map { ("table_bytes_per_assessment_\($0.table)", Double($0.bytes) * perRecord) } + e2e.workerPeakRSSMiB.enumerated().map { ("worker_\($0.offset + 1)_peak_rss_mib", $0.element) }
    }

    /// Disk a run needs per record, measured: the generated input, the batch's rows and
    /// indexes, its WAL until checkpoints recycle it, and the ceiling's copies.
    static let bytesPerRecord: Int64 = 12_000

    /// Refuses a run the disk cannot hold, before anything is written.
    private func checkFreeSpace(_ directory: String) throws {
        var fs = statvfs()
        guard statvfs(directory, &fs) == 0 else { return }
        let free = Int64(fs.f_bavail) * Int64(fs.f_frsize)
        let needed = Int64(records) * Self.bytesPerRecord
        guard free >= needed else {
            let gib = { (b: Int64) in String(format: "%.1f GiB", Double(b) / 1_073_741_824) }
            throw CommandFailure("""
                \(records) records need about \(gib(needed)) of disk in \(directory) (\(Self.bytesPerRecord) bytes a record: \
                input, results, indexes, WAL and the ceiling's copies); it has \(gib(free)) free. Free some space, \
                choose another --data-dir, or run fewer --records.
                """)
        }
    }

    private func printTable(_ figures: [(String, Double)]) {
        print("FIGURE                                                       VALUE")
        for (name, value) in figures {
            let text = value >= 1000 || value == value.rounded() ? String(format: "%.0f", value)
                : value < 1 ? String(format: "%.4f", value) : String(format: "%.2f", value)
            print(name.padding(toLength: 52, withPad: " ", startingAt: 0) + String(repeating: " ", count: max(1, 14 - text.count)) + text)
        }
    }
}
