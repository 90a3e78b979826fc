import ArgumentParser
import Assessment
import Foundation

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write synthetic deployment records (JSON Lines) for trials and benchmarks.",
        discussion: """
            The same --seed gives the same records. The mix of system types follows the Atlas of Surveillance; facts are known or unknown in varying measure.

            Example:
              oversight generate --records 100000 > synthetic.jsonl
            """)

    @Option(help: "Number of records.") var records = 10_000
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func validate() throws {
        guard records >= 0 else { throw ValidationError("--records must not be negative") }
    }

    func run() throws {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        for record in SyntheticDeployments(count: records, seed: seed) {
            record.writeCanonical(into: &buffer)
            buffer.append(0x0A)
            if buffer.count >= 1 << 20 {
                StandardOutput.write(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        StandardOutput.write(buffer)
    }
}
