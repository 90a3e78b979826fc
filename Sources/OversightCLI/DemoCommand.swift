import Identifiers
import ArgumentParser
import Foundation
import ChildProcess
import AuditStore
import Wire
import Assessment
#if canImport(Glibc)
import Glibc
#endif

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole system on this machine with the bundled samples and print a summary.",
        discussion: """
            Starts a private PostgreSQL cluster (in --data-dir), a coordinator and workers as separate processes on loopback, submits the bundled sample batches, shows progress, prints records per verdict and the psql command that queries the results, and stops what it started. Running it again reuses the cluster and adds new batches.

            Example:
              oversight demo
              oversight demo --workers 4 --keep-database
            """)

    @Option(help: "Directory of the demo's PostgreSQL cluster and logs.") var dataDir = ".oversight/demo"
    @Option(help: "Number of worker processes.") var workers = 2
    @Option(name: .customLong("sample"), help: "Batch file to submit (repeatable); default: the files in Samples/.")
    var samples: [String] = []
    @Flag(help: "Leave PostgreSQL running at the end so that you can query it with psql.") var keepDatabase = false

    func validate() throws {
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be between 1 and 64") }
    }

    func run() throws {
        try runOrExit {
            let files = try samples.isEmpty ? Self.bundledSamples() : samples
            let cluster = try LocalCluster(dataDirectory: dataDir)
            printError("starting PostgreSQL in \(cluster.clusterDirectory) (port \(cluster.port))")
            if cluster.relocated {
                printError("(the postgres user cannot reach \(cluster.dataDirectory), so the cluster lives in \(cluster.clusterDirectory); \(LocalCluster.locationFile(cluster.dataDirectory)) says so)")
            }
            try cluster.start()
            defer {
                if !keepDatabase { try? cluster.stop() }
            }
            let store = try AuditStore(conninfo: cluster.conninfo, applicationName: "oversight-demo")
            try store.migrate()

            let logs = cluster.dataDirectory + "/logs"
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            let workerPort = try LocalCluster.freePort()
            let clientPort = try LocalCluster.freePort()
            var children: [ChildProcess] = []
            defer { Self.stop(children) }
            children.append(try Self.spawn(["coordinator", "--database", cluster.conninfo,
                                            "--worker-endpoint", "tcp://127.0.0.1:\(workerPort)",
                                            "--client-endpoint", "tcp://127.0.0.1:\(clientPort)"],
                                           log: logs + "/coordinator.log"))
            for n in 1...workers {
                children.append(try Self.spawn(["worker", "--coordinator", "tcp://127.0.0.1:\(workerPort)",
                                                "--database", cluster.conninfo, "--name", "demo-worker-\(n)"],
                                               log: logs + "/worker-\(n).log"))
            }
            printError("coordinator and \(plural(workers, "worker")) started (logs in \(logs))")

            let client = try CoordinatorClient(endpoint: "tcp://127.0.0.1:\(clientPort)", curve: nil, timeoutSeconds: 30)
            var batchIDs: [BatchID] = []
            for file in files {
                let id = BatchID()
                var submission = Submission(file: try BatchFile(path: file, format: nil), client: client, batchID: id,
                                            name: (file as NSString).lastPathComponent,
                                            packs: CriteriaPack.builtIn.map { .builtIn($0.id) })
                submission.maxRejectionsShown = 5
                printError("submitting \(file) as batch \(id)")
                let outcome = try submission.send(showProgress: true)
                printError("\(outcome.accepted) accepted, \(outcome.rejected) rejected")
                let progress = try submission.wait(showProgress: true)
                printError("batch \(id) \(progress.state == .completed ? "completed" : "stopped"): \(progress.done) assessed, \(progress.failed) failed")
                batchIDs.append(id)
            }
            try Self.printSummary(store, batchIDs: batchIDs, files: files)
            // The report of the Atlas batch (the first CSV), once its seal is made.
            var reportLine = ""
            if let index = files.firstIndex(where: { $0.hasSuffix(".csv") }) {
                let id = batchIDs[index]
                let deadline = Date().addingTimeInterval(30)
                while try store.sealsVisible(batchID: id).isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
                let path = (cluster.dataDirectory as NSString).appendingPathComponent("report-\((files[index] as NSString).deletingPathExtension.split(separator: "/").last ?? "batch").html")
                let made = try ReportCommand.collect(store, batchID: id, fullIndex: 1_000, csvPath: path + ".records.csv")
                try ReportCommand.write(made.report.html, to: path)
                let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
                reportLine = """
                    The report of \((files[index] as NSString).lastPathComponent) (batch \(id)) is in \(absolute); open it in a browser:
                      xdg-open \(absolute)
                    Make it again, or as a PDF (with Chromium installed):
                      oversight report \(id) --out report.pdf --format pdf --database "\(cluster.uri)"
                    Explore every batch in the read-only web console\(keepDatabase ? "" : " (the database must be running: `oversight demo --keep-database`)"), then open http://127.0.0.1:8080/:
                      oversight serve --database "\(cluster.uri)"

                    """
            }
            print("""

                Query the results with psql\(keepDatabase ? "" : " (start the database again with `oversight demo --keep-database`, or `oversight local-db start --data-dir \(dataDir)`)"):
                  psql "\(cluster.uri)" -c 'SELECT * FROM oversight.assessment_summary'
                  psql "\(cluster.uri)" -c 'SELECT record_id, rule, citation, facts FROM oversight.findings LIMIT 20'
                  psql "\(cluster.uri)" -c 'SELECT record_id, verdict, worst_case, question FROM oversight.questions WHERE rank = 1 LIMIT 20'
                Check that a batch is exactly as the coordinator sealed it:
                  oversight audit verify \(batchIDs.first?.description ?? "BATCH") --database "\(cluster.uri)"
                """)
            if !reportLine.isEmpty { print(reportLine, terminator: "") }
        }
    }

    static func bundledSamples() throws -> [String] {
        var candidates = [FileManager.default.currentDirectoryPath + "/Samples"]
        var dir = URL(fileURLWithPath: CommandLine.executablePath).deletingLastPathComponent()
        for _ in 0..<4 { candidates.append(dir.path + "/Samples"); dir = dir.deletingLastPathComponent() }
        for candidate in candidates {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: candidate)) ?? [])
                .filter { $0.hasSuffix(".csv") || $0.hasSuffix(".jsonl") }.sorted()
            if !names.isEmpty { return names.map { candidate + "/" + $0 } }
        }
        throw CommandFailure("the bundled samples (Samples/*.csv, Samples/*.jsonl) were not found; run the demo from the repository, or pass --sample FILE")
    }

    static func spawn(_ arguments: [String], log: String) throws -> ChildProcess {
        try ChildProcess.spawn([CommandLine.executablePath] + arguments, outputPath: log)
    }

    /// Workers first, so that they finish what they hold; then the coordinator.
    static func stop(_ processes: [ChildProcess]) {
        for p in processes.reversed() { p.stop() }
    }

    static func printSummary(_ store: AuditStore, batchIDs: [BatchID], files: [String]) throws {
        print("\nRecords by settled verdict and worst case (packs \(CriteriaPack.builtIn.map(\.id).joined(separator: ", "))):")
        for (id, file) in zip(batchIDs, files) {
            print("  \((file as NSString).lastPathComponent)  (batch \(id))")
            for line in try store.summaryLines(batchID: id) {
                let settled = Verdict(rawValue: line.verdict) ?? .minimal
                let range = Verdict.range(settled, line.worstCase.flatMap(Verdict.init(rawValue:)) ?? settled)
                let records = String(line.records)
                let padding = String(repeating: " ", count: max(0, 7 - records.count))
                print("    \(range.padding(toLength: 36, withPad: " ", startingAt: 0))\(padding)\(records)   mean score \(line.meanScore)")
            }
        }
    }
}

extension CommandLine {
    /// This program's own executable, to start coordinator and workers as separate processes.
    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]
    }
}

struct LocalDatabaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local-db",
        abstract: "Start or stop a private PostgreSQL cluster in a directory (used by the demo and the test suite).",
        discussion: """
            `start` creates the cluster on first use (initdb), starts it on loopback and prints its connection string, a URI that names the cluster's password file (0600; the superuser password is generated at initdb and checked with scram-sha-256). `stop` stops it. As root it runs as the postgres system user; if that user cannot reach the directory (a private home directory, say), the cluster is put under /var/lib/oversight/clusters and the directory remembers where.

            Example:
              oversight local-db start --data-dir /tmp/oversight-db
              oversight local-db stop --data-dir /tmp/oversight-db
            """)

    @Argument(help: "start or stop") var action: String
    @Option(help: "Directory of the cluster.") var dataDir = ".oversight/local-db"
    @Option(help: "TCP port on 127.0.0.1 (default: the one used before, or a free one).") var port: Int?
    @Flag(help: "Turn off fsync and synchronous commit: fast, but a crash can lose data. For throwaway test clusters.")
    var unsafeFast = false

    func validate() throws {
        guard ["start", "stop"].contains(action) else { throw ValidationError("action must be start or stop, got \"\(action)\"") }
    }

    func run() throws {
        try runOrExit {
            var cluster = try LocalCluster(dataDirectory: dataDir, port: port)
            cluster.unsafeFast = unsafeFast
            if action == "start" {
                try cluster.start()
                if cluster.relocated {
                    printError("the postgres user cannot reach \(cluster.dataDirectory), so the cluster lives in \(cluster.clusterDirectory)")
                }
                print(cluster.uri)
            } else {
                try cluster.stop()
            }
        }
    }
}
