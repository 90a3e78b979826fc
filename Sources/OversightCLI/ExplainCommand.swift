import ArgumentParser
import Assessment
import Foundation

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Assess one deployment record and explain the reasoning, rule by rule.",
        discussion: """
            Prints the verdict and, for every rule that fired or needs information, its citation, the facts that made it fire or the fields that are missing, why it matters and what to do. With --json, prints the assessment exactly as it is stored in oversight.assessments.

            Example:
              oversight explain deployment.json
              oversight explain deployment.json --pack eu-ai-act-2024 --json
            """)

    @Argument(help: "A file holding one deployment record (JSON).") var record: String
    @OptionGroup var packOptions: PackOptions
    @Flag(help: "Print the canonical assessment JSON instead of prose.") var json = false
    @Flag(help: "Also list the rules that do not apply.") var all = false

    func run() throws {
        try runOrExit {
            guard FileManager.default.fileExists(atPath: record) else { throw CommandFailure("file not found: \(record)") }
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: record)))
            let value: JSONValue
            switch RecordCheck.check(bytes) {
            case .invalid(let violation):
                throw CommandFailure("\(record): \(violation) (see Schemas/deployment.schema.json)")
            case .valid(let v): value = v
            }
            let criteria = try packOptions.criteriaSet
            let result = criteria.assess(value)
            if json { print(result.canonicalJSON.canonicalString); return }
            print(Self.prose(result, record: value, criteria: criteria, all: all))
        }
    }

    static func prose(_ result: AssessmentResult, record: JSONValue, criteria: CriteriaSet, all: Bool) -> String {
        var out = ""
        let name = record["id"]?.stringValue.map { "Record \($0)" } ?? "The record"
        out += "\(name): \(result.verdict.rawValue.replacingOccurrences(of: "_", with: " ")), score \(result.score)/100\n"
        for (pack, packResult) in zip(criteria.packs, result.packs) {
            let applies: String
            switch packResult.applies {
            case .binding: applies = "binds in law here"
            case .benchmark: applies = pack.bindingIn.isEmpty ? "a benchmark" : "applies as a benchmark (the operator is outside where it binds)"
            case .undetermined: applies = "binding or not depends on operator.country, which is unknown"
            }
            out += "\n\(pack.title) (\(pack.id) \(pack.version)) — \(applies)\n"
            out += "  \(packResult.verdict.rawValue.replacingOccurrences(of: "_", with: " ")), score \(packResult.score)\n"
            for finding in packResult.findings {
                let mark = finding.outcome == .fired ? "FIRED" : "NEEDS INFORMATION"
                out += "\n  \(mark): \(finding.title)\n"
                out += "    rule \(finding.ruleID), \(finding.severity.rawValue), \(finding.points) points\n"
                out += "    \(finding.citation)\n"
                if finding.outcome == .fired {
                    let facts = finding.facts.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value == .null ? "absent" : $0.value.canonicalString)" }
                    if !facts.isEmpty { out += "    Because: \(facts.joined(separator: "; "))\n" }
                } else {
                    out += "    Unknown, and deciding: \(finding.missing.joined(separator: ", "))\n"
                }
                out += "    Why: \(finding.rationale)\n"
                out += "    What to do: \(finding.remediation)\n"
            }
            let silent = pack.rules.filter { rule in !packResult.findings.contains { $0.ruleID == rule.id } }
            if all {
                for rule in silent { out += "  does not apply: \(rule.id) — \(rule.title)\n" }
            } else if !silent.isEmpty {
                out += "\n  \(silent.count) other rules do not apply (--all lists them).\n"
            }
        }
        if !result.missing.isEmpty {
            out += "\nInformation that would settle open questions: \(result.missing.joined(separator: ", "))\n"
        }
        return out
    }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn other formats into deployment records (JSON Lines).",
        discussion: """
            Example:
              oversight import atlas atlas-of-surveillance.csv > records.jsonl
            """,
        subcommands: [Atlas.self])

    struct Atlas: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert an EFF Atlas of Surveillance CSV export into deployment records.",
            discussion: """
                Maps what a row says — technology (system type and the data it necessarily processes), agency and agency type (a law-enforcement operator in the United States), jurisdiction, vendor, summary, sources — and leaves everything else absent, that is unknown. Rows that cannot be read are reported with their line.

                Example:
                  oversight import atlas Samples/atlas-of-surveillance-sample.csv \\
                      > atlas.jsonl
                """)

        @Argument(help: "The Atlas of Surveillance CSV file.") var file: String

        func run() throws {
            try runOrExit {
                var input = try BatchFile(path: file, format: .csv)
                var written = 0, failed = 0
                while true {
                    let records = try input.next(1_000)
                    if records.isEmpty { break }
                    guard input.csvLayout == .atlas else {
                        throw CommandFailure("\(file): line 1: not an Atlas of Surveillance export (no AOSNUMBER and Technology columns); submit field-path CSV files directly")
                    }
                    var out = ""
                    for record in records {
                        switch record.body {
                        case .json(let bytes):
                            out += String(decoding: bytes, as: UTF8.self) + "\n"
                            written += 1
                        case .oversized(_, let bytes, _):
                            failed += 1
                            printError("\(file):\(record.line): a line of \(bytes) bytes is larger than a record can be")
                        case .malformed(_, let field, let message):
                            failed += 1
                            printError("\(file):\(record.line):\(field.isEmpty ? "" : " field \"\(field)\":") \(message)")
                        }
                    }
                    StandardOutput.write(out)
                }
                printError("\(plural(written, "record")) written\(failed > 0 ? ", \(plural(failed, "row")) could not be read" : "")")
                if failed > 0 { throw ExitCode.failure }
            }
        }
    }
}
