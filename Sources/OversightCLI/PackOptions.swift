import ArgumentParser
import Assessment
import Foundation
import Wire

/// `--pack ID|FILE`, repeatable: the criteria set to assess with.
struct PackOptions: ParsableArguments {
    @Option(name: .customLong("pack"), help: ArgumentHelp(
        "A criteria pack: a built-in id (eu-ai-act-2024, gdpr-dpia, privacy-baseline) or a pack file (JSON). Repeat for several; default: all built-in packs.",
        valueName: "id|file"))
    var packs: [String] = []

    /// A pack as given: its compiled form, and how to name it to the coordinator.
    struct Resolved {
        let pack: CriteriaPack
        let spec: PackSpec
    }

    func resolve() throws -> [Resolved] { try Self.resolve(packs) }

    /// Built-in ids and pack files, compiled; all built-in packs when `packs` is empty.
    static func resolve(_ packs: [String]) throws -> [Resolved] {
        if packs.isEmpty { return CriteriaPack.builtIn.map { Resolved(pack: $0, spec: .builtIn($0.id)) } }
        var resolved: [Resolved] = []
        for name in packs {
            if let pack = CriteriaPack.builtIn(id: name) {
                resolved.append(Resolved(pack: pack, spec: .builtIn(name)))
                continue
            }
            guard FileManager.default.fileExists(atPath: name) else {
                throw ValidationError("--pack \"\(name)\" is neither a built-in pack (\(CriteriaPack.builtIn.map(\.id).joined(separator: ", "))) nor a file")
            }
            let text: String
            do { text = try String(contentsOfFile: name, encoding: .utf8) } catch {
                throw CommandFailure("cannot read pack file \(name): \(error.localizedDescription)")
            }
            do {
                let pack = try CriteriaPack(json: text)
                for warning in CriteriaPack.warnings(json: text) { printError("\(name): warning: \(warning)") }
                resolved.append(Resolved(pack: pack, spec: .document(text)))
            } catch {
                throw CommandFailure("\(name): \(error)")
            }
        }
        guard Set(resolved.map(\.pack.id)).count == resolved.count else {
            throw ValidationError("a pack id appears twice among the --pack options")
        }
        return resolved
    }

    var criteriaSet: CriteriaSet {
        get throws { CriteriaSet(try resolve().map(\.pack)) }
    }
}

extension EvidencePack {
    /// An evidence pack file, compiled; errors name the file, line and path.
    static func load(_ path: String) throws -> EvidencePack {
        guard FileManager.default.fileExists(atPath: path) else { throw CommandFailure("evidence pack file not found: \(path)") }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw CommandFailure("cannot read \(path) as UTF-8 text") }
        do { return try EvidencePack(json: text) } catch { throw CommandFailure("\(path): \(error)") }
    }
}
