import Foundation
import PackagePlugin

/// Embeds files from `Schemas/` into the target that uses this plugin, as Swift string
/// constants, so the binary carries exactly what the repository's `Schemas/` holds.
///
/// `Assessment` gets the JSON Schemas, the built-in criteria packs and the built-in evidence
/// pack; `AuditStore` gets the SQL migrations.
@main
struct EmbedSchemasPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) async throws -> [Command] {
        let schemas = context.package.directoryURL.appending(path: "Schemas")
        let wanted: [URL]
        switch target.name {
        case "AuditStore":
            wanted = try files(in: schemas.appending(path: "sql"), ext: "sql")
        default:
            wanted = [schemas.appending(path: "deployment.schema.json"),
                      schemas.appending(path: "criteria-pack.schema.json"),
                      schemas.appending(path: "evidence-pack.schema.json")]
                + (try files(in: schemas.appending(path: "packs"), ext: "json"))
                + (try files(in: schemas.appending(path: "evidence"), ext: "json"))
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedSchemas.swift")
        return [.buildCommand(
            displayName: "Embedding \(wanted.count) schema files into \(target.name)",
            executable: try context.tool(named: "EmbedSchemas").url,
            arguments: [output.path] + wanted.map(\.path),
            inputFiles: wanted,
            outputFiles: [output])]
    }

    private func files(in dir: URL, ext: String) throws -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix("." + ext) }.sorted().map { dir.appending(path: $0) }
    }
}
