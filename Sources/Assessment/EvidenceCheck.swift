/// Whether a record's inferred facts are what the evidence packs they name read from the
/// record's own text. A fact is a claim of the submitter's: it counts only if the pack it names
/// is known (built in, or stored when a batch brought it) and, run on the record, finds exactly
/// that fact (field, value, span, source, pattern and strength). A fact one knows goes in its
/// field, as a declared fact.
public enum EvidenceCheck {
    /// The SHA-256 (hex) in a fact's `pack` ("atlas-evidence 1.2.0 sha256:…"), if it has one.
    public static func packHash(_ pin: String) -> String? {
        guard let range = pin.range(of: "sha256:", options: .backwards) else { return nil }
        let hex = pin[range.upperBound...].lowercased()
        guard hex.count == 64, hex.allSatisfy(\.isHexDigit) else { return nil }
        return hex
    }

    /// nil when every inferred fact checks out; else the first that does not, by its place in
    /// the list. `pack` finds a pack by its SHA-256 in hex, nil when unknown.
    public static func violation(in record: JSONValue, pack: (String) throws -> EvidencePack?) rethrows -> SchemaViolation? {
        guard case .array(let items)? = record["inferred"], !items.isEmpty else { return nil }
        var found: [String: Set<InferredFact>] = [:]
        for (i, item) in items.enumerated() {
            let at = "inferred[\(i)]"
            guard let fact = InferredFact(item) else {
                return SchemaViolation(field: at, message: "an inferred fact needs field, value, span, source, pattern and strength (stated or implied)")
            }
            guard let pin = item["pack"]?.stringValue else {
                return SchemaViolation(field: "\(at).pack", message: "an inferred fact must name the evidence pack that read it (id, version, sha256:…); read the text again with `oversight import atlas`, or put a fact you know in its field")
            }
            guard let hex = packHash(pin) else {
                return SchemaViolation(field: "\(at).pack", message: "\"\(pin)\" does not end in sha256: and 64 hex digits, as `oversight import atlas` writes it")
            }
            if found[hex] == nil {
                guard let reader = try pack(hex) else {
                    return SchemaViolation(field: "\(at).pack", message: "evidence pack sha256:\(hex.prefix(12))… is not one the coordinator holds; submit with --evidence-pack FILE (the pack that read the text) so that it is stored")
                }
                found[hex] = Set(reader.infer(record))
            }
            if found[hex]!.contains(fact) { continue }
            if !fact.source.hasPrefix("register:"), let text = EvidencePack.text(of: fact.source, in: record), !text.contains(fact.span) {
                return SchemaViolation(field: "\(at).span", message: "the span is not in the record's \(fact.source): an inferred fact rests on text the record holds; read the text again with `oversight import atlas`")
            }
            return SchemaViolation(field: at, message: "the evidence pack it names, run on this record's text, does not find this fact (\(fact.field) from \(fact.pattern)); facts are read by the pack, not written by hand: put a fact you know in its field instead")
        }
        return nil
    }
}
