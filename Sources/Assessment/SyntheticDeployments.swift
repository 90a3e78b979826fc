/// Seeded, realistic-looking deployment records for tests, demos and benchmarks: a mix of
/// system types like the Atlas of Surveillance (mostly licence-plate readers, body-worn cameras
/// and drones; some face recognition), with EU and US operators and facts known or unknown in
/// varying measure, so every rule outcome occurs. The same seed gives the same records.
public struct SyntheticDeployments: Sequence, IteratorProtocol {
    private var state: UInt64
    private var index = 0
    private let count: Int

    public init(count: Int, seed: UInt64 = 1) {
        self.count = count
        self.state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    /// xorshift64*: tiny, fast and deterministic across platforms.
    private mutating func random() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    private mutating func pick<T>(_ options: [T]) -> T { options[Int(random() % UInt64(options.count))] }
    private mutating func chance(_ percent: UInt64) -> Bool { random() % 100 < percent }

    static let types: [(String, Int)] = [
        ("alpr", 32), ("body_worn_camera", 24), ("drone", 18), ("facial_recognition", 8), ("cell_site_simulator", 4),
        ("gunshot_detection", 2), ("video_analytics", 3), ("emotion_recognition", 3), ("remote_biometric_identification", 2),
        ("social_scoring", 1), ("individual_crime_prediction", 1), ("place_based_predictive_policing", 1), ("biometric_categorisation", 1),
    ]
    static let countries = ["US", "US", "US", "DE", "FR", "NL", "IT", "ES", "PL", "SE", "GB"]
    static let kinds = ["law_enforcement", "law_enforcement", "public_authority", "private", "private_for_public_authority"]

    public mutating func next() -> JSONValue? {
        guard index < count else { return nil }
        index += 1
        var roll = Int(random() % 100)
        var type = "other"
        for (name, weight) in Self.types {
            if roll < weight { type = name; break }
            roll -= weight
        }
        var op: [(key: String, value: JSONValue)] = [("name", .string("Agency \(index % 5000)"))]
        if chance(90) { op.append(("kind", .string(pick(Self.kinds)))) }
        if chance(95) { op.append(("country", .string(pick(Self.countries)))) }
        var system: [(key: String, value: JSONValue)] = [("type", .string(type)), ("vendor", .string(pick(["Axon", "Flock Safety", "Motorola", "Clearview AI", "ShotSpotter", "Vendor \(index % 97)"])))]
        if chance(60) { system.append(("identification_mode", .string(pick(["one_to_many", "one_to_one_verification", "none"])))) }
        if chance(60) { system.append(("timing", .string(pick(["real_time", "post"])))) }
        if chance(30) { system.append(("inferred_attributes", .array([.string(pick(["emotion", "age", "sex", "identity", "behaviour"]))]))) }
        if chance(20) { system.append(("training_data_source", .string(pick(["untargeted_scraping", "licensed", "own_collection"])))) }
        var context: [(key: String, value: JSONValue)] = [("purpose", .string("Synthetic deployment \(index)"))]
        if chance(70) { context.append(("settings", .array([.string(pick(["publicly_accessible", "workplace", "education", "border", "online", "private"]))]))) }
        if chance(40) { context.append(("law_enforcement_objective", .string(pick(["victim_search", "imminent_threat", "serious_crime_suspect", "general"])))) }
        if chance(50) { context.append(("people_affected_per_day", .number(Double(random() % 100_000)))) }
        if chance(30) { context.append(("medical_or_safety_reason", .bool(chance(30)))) }
        var safeguards: [(key: String, value: JSONValue)] = []
        for key in ["prior_authorisation", "fria_done", "eu_database_registered", "human_review", "notice", "redress"] where chance(50) {
            safeguards.append((key, .bool(chance(50))))
        }
        var decisions: [(key: String, value: JSONValue)] = []
        if chance(20) { decisions.append(("scoring_over_time", .bool(chance(50)))) }
        if chance(20) { decisions.append(("detrimental_treatment", .bool(chance(50)))) }
        var record: [(key: String, value: JSONValue)] = [
            ("id", .string("SYN\(index)")),
            ("operator", .object(op)),
            ("system", .object(system)),
            ("context", .object(context)),
            ("data", .object([("categories", .array([.string(pick(["biometric", "images", "vehicle", "location", "audio"]))])),
                              ("retention_days", .number(Double(random() % 1000)))])),
        ]
        if !safeguards.isEmpty { record.append(("safeguards", .object(safeguards))) }
        if !decisions.isEmpty { record.append(("decisions", .object(decisions))) }
        return .object(record)
    }
}
