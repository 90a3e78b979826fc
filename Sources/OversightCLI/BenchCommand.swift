import ArgumentParser
import Assessment
import Foundation
import Wire

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the engine, record decoding and the wire codec on one core.",
        discussion: """
            Generates seeded synthetic records (the mix of the Atlas of Surveillance), then times,
            on this thread alone: scoring parsed records with the built-in packs; decoding records
            (JSON parse and schema validation); and encoding plus decoding JOBS messages. Each
            figure is the best of --rounds rounds. Build with -c release for meaningful numbers.

            Example:
              swift build -c release && .build/release/oversight bench --records 100000
            """)

    @Option(help: "Records per round.") var records = 50_000
    @Option(help: "Rounds per measurement; the best is reported.") var rounds = 3
    @Option(help: "Write every figure to this JSON file.") var json: String?

    func validate() throws {
        guard records >= 1_000 else { throw ValidationError("--records must be at least 1000") }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 100") }
    }

    func run() throws {
        try runOrExit {
            let generated = Array(SyntheticDeployments(count: records, seed: 42))
            let texts = generated.map(\.canonicalBytes)
            let criteria = CriteriaSet.builtIn
            var figures: [(String, Double)] = []

            let scoring = best {
                var checksum = 0
                for record in generated { checksum &+= criteria.assess(record).score }
                return checksum
            }
            figures.append(("scoring_per_second_one_core", Double(records) / scoring))

            let canonical = best {
                var bytes = 0
                for record in generated { bytes &+= criteria.assess(record).canonicalBytes.count }
                return bytes
            }
            figures.append(("scoring_with_canonical_output_per_second_one_core", Double(records) / canonical))

            let decoding = best {
                var valid = 0
                for text in texts { if case .valid = RecordCheck.check(text) { valid += 1 } }
                return valid
            }
            figures.append(("record_decoding_per_second_one_core", Double(records) / decoding))

            let batch = BatchID()
            let sha = criteria.sha256
            let bundles = stride(from: 0, to: texts.count, by: 256).map { start in
                JobBundle(batchID: batch, criteriaSHA256: sha, jobs: texts[start..<min(start + 256, texts.count)].enumerated().map {
                    Job(seq: Int64(start + $0.offset), attempt: 0, record: $0.element)
                })
            }
            let codec = best {
                var jobs = 0
                for bundle in bundles {
                    if case .jobs(let decoded)? = try? CoordinatorMessage.decode(CoordinatorMessage.jobs(bundle).encode()[...]) { jobs += decoded.jobs.count }
                }
                return jobs
            }
            figures.append(("wire_codec_jobs_per_second_one_core", Double(records) / codec))

            print("BENCHMARK (one core, \(records) records, best of \(rounds))       PER SECOND")
            for (name, value) in figures {
                print(name.padding(toLength: 52, withPad: " ", startingAt: 0) + String(format: "%12.0f", value))
            }
            if let json {
                let object = JSONValue.object(figures.map { ($0.0, .number($0.1.rounded())) } + [("records", .number(Double(records)))])
                try (object.canonicalString + "\n").write(toFile: json, atomically: true, encoding: .utf8)
            }
        }
    }

    /// Fastest of `rounds` runs of `body`, in seconds. The result is kept so the work is not elided.
    private func best(_ body: () -> Int) -> Double {
        var fastest = Double.infinity
        var sink = 0
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            sink &+= body()
            let elapsed = ContinuousClock.now - start
            fastest = min(fastest, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        if sink == Int.min { print("") }
        return fastest
    }
}
