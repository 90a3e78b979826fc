import Foundation

/// The repository's Samples/ directory.
let samplesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Samples").path

/// A file of the test's own in the temporary directory, holding `text`.
func temporaryFile(_ name: String, _ text: String) throws -> String {
    let path = NSTemporaryDirectory() + "ovs-\(UUID().uuidString)-\(name)"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
