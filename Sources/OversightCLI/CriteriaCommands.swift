import ArgumentParser
import Assessment
import Foundation

struct CriteriaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "criteria",
        abstract: "List, show and validate criteria packs.",
        discussion: """
            A criteria pack is data: rules with legal citations and conditions over the fields of a deployment record (Schemas/criteria-pack.schema.json). Write your own, check it with `validate`, and use it with `oversight submit --pack FILE` or `oversight explain --pack FILE`.

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
                guard CriteriaPack.builtIn(id: pack) != nil || FileManager.default.fileExists(atPath: pack) else {
                    throw CommandFailure("no built-in pack \"\(pack)\" and no file of that name; built-in packs: \(CriteriaPack.builtIn.map(\.id).joined(separator: ", "))")
                }
                guard let resolved = try PackOptions.resolve([pack]).first?.pack else { return }
                if json { print(resolved.canonicalText); return }
                print("\(resolved.id) \(resolved.version): \(resolved.title)")
                if let source = resolved.source { print("Source: \(source)") }
                print(resolved.bindingIn.isEmpty ? "Binds in: nowhere; applies everywhere as a benchmark"
                      : "Binds in: \(resolved.bindingIn.sorted().joined(separator: " ")); elsewhere a benchmark")
                print("Verdict: the most severe rule the known facts make fire (minimal if none); worst case: the most severe rule fired or still open.")
                print("Score: the points of fired rules, at most 100; worst-case score: with the open rules' points.")
                print("SHA-256: \(resolved.sha256Hex)\n")
                for rule in resolved.rules {
                    let from = rule.appliesFrom.map { ", applies from \($0)" } ?? ""
                    if let threshold = rule.threshold {
                        print("\(rule.id)  [criterion: counts toward \(threshold.rules.joined(separator: ", ")), which need \(threshold.atLeast) of \(threshold.of)\(from)]")
                    } else {
                        print("\(rule.id)  [\(rule.severity.rawValue), \(plural(rule.points, "point"))\(from)]")
                    }
                    print("  \(rule.title)")
                    print("  Citation: \(rule.citation)")
                    print("  Reads: \(rule.fields.joined(separator: ", "))")
                }
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check pack files: syntax, structure, field paths and values, and rules no facts can decide; every problem with its line and path.",
            discussion: "A directory checks every .json file in it. Besides what would stop a pack compiling, it searches each rule for facts that make it fire and facts that rule it out: a rule that can never fire (its tests contradict each other) is a problem, one that fires whatever the facts a warning, and so are keys the engine no longer needs. An evidence pack (\"kind\": \"evidence\", Schemas/evidence-pack.schema.json) is checked as one: every field and value against the deployment schema, every register entry's source. Exit status 1 if any file has a problem.\n\nExample:\n  oversight criteria validate my-criteria.json\n  oversight criteria validate packs/")

        @Argument(help: "Pack files (JSON), or directories of them.") var files: [String]

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("give a pack file or a directory of pack files") }
        }

        func run() throws {
            try runOrExit {
                var failed = 0
                for file in try Self.expand(files) {
                    let text: String
                    do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                        printError("\(file): cannot be read as UTF-8 text")
                        failed += 1
                        continue
                    }
                    // An evidence pack (kind "evidence") is checked as one.
                    if (try? JSONParser.parse(text))?["kind"] == .string("evidence") {
                        do {
                            let pack = try EvidencePack(json: text)
                            print("\(file): valid evidence pack \(pack.id) \(pack.version), \(plural(pack.patterns.count, "pattern")), \(plural(pack.register.count, "register entry", "register entries")), sha256 \(pack.sha256Hex)")
                        } catch let error as CriteriaPack.CompileError {
                            failed += 1
                            printError("\(file)\(error.line.map { ":\($0)" } ?? ""): \(error.path.isEmpty ? "" : error.path + ": ")\(error.message)")
                        } catch {
                            failed += 1
                            printError("\(file): \(error)")
                        }
                        continue
                    }
                    let problems = CriteriaPack.problems(json: text)
                    if problems.isEmpty, let pack = try? CriteriaPack(json: text) {
                        for warning in CriteriaPack.warnings(json: text) {
                            printError("\(file)\(warning.line.map { ":\($0)" } ?? ""): warning: \(warning.path): \(warning.message)")
                        }
                        // A rule no facts can make fire is a defect; one that always fires, a warning.
                        let degenerate = pack.degenerateRules()
                        for rule in degenerate {
                            let path = "rules[\(rule.index)].when"
                            let line = CriteriaPack.line(ofPath: path, in: text).map { ":\($0)" } ?? ""
                            printError("\(file)\(line): \(rule.neverFires ? "" : "warning: ")\(path): \(rule)")
                        }
                        let defects = degenerate.filter(\.neverFires).count
                        if defects > 0 {
                            failed += 1
                            printError("\(file): \(plural(defects, "rule")) can never fire")
                            continue
                        }
                        print("\(file): valid pack \(pack.id) \(pack.version), \(plural(pack.rules.count, "rule")), sha256 \(pack.sha256Hex)")
                        continue
                    }
                    failed += 1
                    for problem in problems {
                        let place = problem.line.map { ":\($0)" } ?? ""
                        printError("\(file)\(place): \(problem.path.isEmpty ? "" : problem.path + ": ")\(problem.message)")
                    }
                    printError("\(file): \(plural(problems.count, "problem"))\(problems.count >= 50 ? " (the first 50)" : "")")
                }
                if failed > 0 { throw ExitCode.failure }
            }
        }

        /// Files as given; a directory stands for the .json files in it.
        static func expand(_ paths: [String]) throws -> [String] {
            var out: [String] = []
            for path in paths {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CommandFailure("file not found: \(path)") }
                if isDirectory.boolValue {
                    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                    let packs = names.filter { $0.hasSuffix(".json") }.sorted()
                    guard !packs.isEmpty else { throw CommandFailure("\(path) is a directory with no .json files; give pack files") }
                    out += packs.map { (path as NSString).appendingPathComponent($0) }
                } else {
                    out.append(path)
                }
            }
            return out
        }
    }
}
