import ArgumentParser
import Assessment
import Foundation

struct CriteriaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "criteria",
        abstract: "List, show and validate criteria packs.",
        discussion: """
            A criteria pack is data: rules with legal citations and conditions over the fields of a
            deployment record (Schemas/criteria-pack.schema.json). Write your own, check it with
            `validate`, and use it with `oversight submit --pack FILE` or `oversight explain --pack FILE`.

            Example:
              oversight criteria list
              oversight criteria show eu-ai-act-2024
              oversight criteria validate my-criteria.json
            """,
        subcommands: [List.self, Show.self, Validate.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the built-in criteria packs.",
            discussion: "Example:\n  oversight criteria list")

        func run() {
            print("PACK               VERSION  RULES  BINDS IN            SHA-256")
            for pack in CriteriaPack.builtIn {
                let binds = pack.bindingIn.isEmpty ? "nowhere (benchmark)" : "EU/EEA (\(pack.bindingIn.count))"
                print(pack.id.padding(toLength: 19, withPad: " ", startingAt: 0)
                      + pack.version.padding(toLength: 9, withPad: " ", startingAt: 0)
                      + String(pack.rules.count).padding(toLength: 7, withPad: " ", startingAt: 0)
                      + binds.padding(toLength: 20, withPad: " ", startingAt: 0)
                      + String(pack.sha256Hex.prefix(16)))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a pack's rules: severity, points, citation, and the fields each reads.",
            discussion: "Example:\n  oversight criteria show gdpr-dpia\n  oversight criteria show my-criteria.json --json")

        @Argument(help: "A built-in pack id or a pack file.") var pack: String
        @Flag(help: "Print the pack's canonical JSON (what its SHA-256 is computed over).") var json = false

        func run() throws {
            try runOrExit {
                guard let resolved = try PackOptions.resolve([pack]).first?.pack else { return }
                if json { print(resolved.canonicalText); return }
                print("\(resolved.id) \(resolved.version): \(resolved.title)")
                if let source = resolved.source { print("Source: \(source)") }
                print("Binds in: \(resolved.bindingIn.isEmpty ? "nowhere; applies everywhere as a benchmark" : resolved.bindingIn.sorted().joined(separator: " ")); elsewhere a benchmark")
                print("Verdict: the most severe fired rule; insufficient_information when a rule of severity \(resolved.blockingSeverities.map(\.rawValue).sorted().joined(separator: "/")) needs information and is more severe.")
                print("Score: fired points + \(resolved.unknownWeight) x the largest points of a rule that needs information, at most 100.")
                print("SHA-256: \(resolved.sha256Hex)\n")
                for rule in resolved.rules {
                    print("\(rule.id)  [\(rule.severity.rawValue), \(rule.points) points\(rule.blocksVerdict ? "" : ", never blocks the verdict")]")
                    print("  \(rule.title)")
                    print("  Citation: \(rule.citation)")
                    print("  Reads: \(rule.fields.joined(separator: ", "))")
                }
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a pack file: syntax, structure, field paths and values; errors give the line and path.",
            discussion: "Example:\n  oversight criteria validate my-criteria.json")

        @Argument(help: "The pack file (JSON).") var file: String

        func run() throws {
            try runOrExit {
                guard FileManager.default.fileExists(atPath: file) else { throw CommandFailure("file not found: \(file)") }
                let text = try String(contentsOfFile: file, encoding: .utf8)
                do {
                    let pack = try CriteriaPack(json: text)
                    print("\(file): valid pack \(pack.id) \(pack.version), \(pack.rules.count) rules, sha256 \(pack.sha256Hex)")
                } catch let error as CriteriaPack.CompileError {
                    let place = [error.line.map { "\($0)" }].compactMap { $0 }.joined()
                    throw CommandFailure("\(file)\(place.isEmpty ? "" : ":" + place): \(error.path.isEmpty ? "" : error.path + ": ")\(error.message)")
                }
            }
        }
    }
}

