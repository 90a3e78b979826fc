/// The EFF Atlas of Surveillance CSV export (CC BY 4.0): records of US law-enforcement
/// agencies and the surveillance technology they use.
///
/// Only what the Atlas states is mapped: every agency is law enforcement in the United
/// States; the technology fixes the system type and the data categories it necessarily
/// processes (a licence-plate reader reads vehicle and location data). Nothing else is
/// guessed: where the Atlas is silent, the field stays absent, which means unknown.
enum AtlasOfSurveillance {
    static let systemTypes: [String: String] = [
        "Automated License Plate Readers": "alpr",
        "Body-worn Cameras": "body_worn_camera",
        "Drones": "drone",
        "Face Recognition": "facial_recognition",
        "Cell-site Simulator": "cell_site_simulator",
        "Gunshot Detection": "gunshot_detection",
        "Video Analytics": "video_analytics",
        // Predictive policing may be place-based or person-based; the Atlas does not say which,
        // so the type stays unknown. Real-time crime centres, fusion centres, camera registries
        // and investigative platforms are not one AI system type of the schema.
    ]

    static let dataCategories: [String: [String]] = [
        "Automated License Plate Readers": ["vehicle", "location", "images"],
        "Body-worn Cameras": ["images", "audio"],
        "Drones": ["images"],
        "Face Recognition": ["biometric", "images"],
        "Cell-site Simulator": ["communications", "location"],
        "Gunshot Detection": ["audio", "location"],
        "Video Analytics": ["images"],
        "Camera Registry": ["images"],
    ]

    static func record(_ row: [String], columns: [String: Int]) -> JSONValue {
        func cell(_ name: String) -> String? {
            guard let i = columns[name], i < row.count else { return nil }
            let v = row[i].trimmingSpaces
            return v.isEmpty ? nil : v
        }
        var members: [(key: String, value: JSONValue)] = []
        if let id = cell("AOSNUMBER") { members.append(("id", .string(String(id.prefix(200))))) }
        if let summary = cell("Summary") { members.append(("summary", .string(String(summary.prefix(20000))))) }

        var op: [(key: String, value: JSONValue)] = [("kind", .string("law_enforcement")), ("country", .string("US"))]
        if let agency = cell("Agency") { op.insert(("name", .string(String(agency.prefix(500)))), at: 0) }
        if let state = cell("State") { op.append(("region", .string(String(state.prefix(200))))) }
        if let city = cell("City") { op.append(("locality", .string(String(city.prefix(200))))) }
        if let juris = cell("Type of Juris") { op.append(("jurisdiction_type", .string(String(juris.prefix(200))))) }
        members.append(("operator", .object(op)))

        var system: [(key: String, value: JSONValue)] = []
        let technology = cell("Technology")
        if let technology {
            system.append(("name", .string(String(technology.prefix(500)))))
            if let type = systemTypes[technology] { system.append(("type", .string(type))) }
        }
        if let vendor = cell("Vendor") { system.append(("vendor", .string(String(vendor.prefix(500))))) }
        if !system.isEmpty { members.append(("system", .object(system))) }

        if let technology, let categories = dataCategories[technology] {
            members.append(("data", .object([("categories", .array(categories.map(JSONValue.string)))])))
        }

        var sources: [JSONValue] = []
        for n in 1...3 {
            guard let url = cell("Link \(n)") else { continue }
            var source: [(key: String, value: JSONValue)] = [("url", .string(String(url.prefix(4000))))]
            if let publisher = cell("Link \(n) Source") { source.append(("publisher", .string(String(publisher.prefix(500))))) }
            if let date = cell("Link \(n) Date") { source.append(("date", .string(String(date.prefix(100))))) }
            sources.append(.object(source))
        }
        if !sources.isEmpty { members.append(("sources", .array(sources))) }
        return .object(members)
    }
}
