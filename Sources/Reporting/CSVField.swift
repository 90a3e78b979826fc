/// CSV fields as a spreadsheet should read them: quoted when they hold a comma, a quote or a
/// line break, and a field that a spreadsheet would take for a formula (leading `=`, `+`, `-`,
/// `@`, tab or carriage return) neutralised with a leading `'`. Record text comes from the
/// outside world; a CSV of it is opened by people who trust their spreadsheet.
public enum CSVField {
    public static func quote(_ value: String) -> String {
        // Read as bytes: a million rows of eleven fields each, walked by Character, took seconds.
        var v = value
        if let first = v.utf8.first, [UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), 0x09, 0x0D].contains(first) {
            v = "'" + v
        }
        guard v.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }) else { return v }
        var quoted: [UInt8] = [UInt8(ascii: "\"")]
        quoted.reserveCapacity(v.utf8.count + 8)
        for byte in v.utf8 {
            if byte == UInt8(ascii: "\"") { quoted.append(byte) }
            quoted.append(byte)
        }
        quoted.append(UInt8(ascii: "\""))
        return String(decoding: quoted, as: UTF8.self)
    }

    /// One line of fields, ending in a line feed.
    public static func line(_ fields: [String]) -> String {
        fields.map(quote).joined(separator: ",") + "\n"
    }
}
