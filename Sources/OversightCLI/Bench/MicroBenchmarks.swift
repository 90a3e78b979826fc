import Identifiers
import Assessment
import Foundation
import Wire

/// The engine, record decoding and the wire codec, timed on the calling thread alone.
struct MicroBenchmarks {
    let records: Int
    let rounds: Int

    func run() -> [(String, Double)] {
        // Scored as a worker scores them: parsed from the bytes the coordinator stored.
        let texts = SyntheticDeployments(count: records, seed: 42).map(\.canonicalBytes)
        let generated = texts.map { try! JSONParser.parse($0) }
        let criteria = CriteriaSet.builtIn
        var figures: [(String, Double)] = []

        let scoring = best {
            var checksum = 0
            for record in generated { checksum &+= criteria.assess(record, asOf: .today).score }
            return checksum
        }
        figures.append(("scoring_per_second_one_core", Double(records) / scoring))

        let canonical = best {
            var bytes = 0
            for record in generated { bytes &+= criteria.assess(record, asOf: .today).canonicalBytes.count }
            return bytes
        }
        figures.append(("scoring_with_canonical_output_per_second_one_core", Double(records) / canonical))

        let decoding = best {
            var valid = 0
            for text in texts { if case .valid = RecordCheck.check(text) { valid += 1 } }
            return valid
        }
        figures.append(("record_decoding_per_second_one_core", Double(records) / decoding))

        // What intake does with every submitted record: the one-pass scan, the tree when unsure.
        let validation = best {
            var valid = 0
            for text in texts where RecordCheck.validate(text) == nil { valid += 1 }
            return valid
        }
        figures.append(("intake_validation_per_second_one_core", Double(records) / validation))

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
        return figures
    }

    /// Fastest of `rounds` runs of `body`, in seconds. The result is kept so the work is not elided.
    private func best(_ body: () -> Int) -> Double {
        var fastest = Double.infinity
        var sink = 0
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            sink &+= body()
            fastest = min(fastest, (ContinuousClock.now - start).seconds)
        }
        if sink == Int.min { print("") }
        return fastest
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
