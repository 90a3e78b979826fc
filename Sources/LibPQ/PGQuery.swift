/// A SQL statement whose interpolated values become bound parameters (`$1`, `$2`, …), never
/// SQL text: injection is impossible by construction. Only string literals convert to a query.
public struct PGQuery: ExpressibleByStringInterpolation, Sendable {
    public private(set) var sql: String
    public private(set) var binds: [PGBind]

    public init(stringLiteral value: String) {
        sql = value
        binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        sql = stringInterpolation.sql
        binds = stringInterpolation.binds
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [PGBind] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) { sql += literal }

        public mutating func appendInterpolation(_ value: some PGEncodable) {
            binds.append(value.pgBind)
            sql += "$\(binds.count)"
        }

        /// Splices trusted SQL text known at compile time (a column list, say); never user input.
        public mutating func appendInterpolation(unescaped text: StaticString) { sql += "\(text)" }

        public mutating func appendInterpolation(_ value: (some PGEncodable)?) {
            binds.append(value?.pgBind ?? .null)
            sql += "$\(binds.count)"
        }
    }
}

/// One bound parameter: NULL, text, or binary (bytea).
public enum PGBind: Sendable, Hashable {
    case null
    case text(String)
    case binary([UInt8])
}

/// A Swift value that can be bound as a parameter.
public protocol PGEncodable {
    var pgBind: PGBind { get }
}

extension String: PGEncodable { public var pgBind: PGBind { .text(self) } }
extension Substring: PGEncodable { public var pgBind: PGBind { .text(String(self)) } }
extension Int: PGEncodable { public var pgBind: PGBind { .text(String(self)) } }
extension Int64: PGEncodable { public var pgBind: PGBind { .text(String(self)) } }
extension Int32: PGEncodable { public var pgBind: PGBind { .text(String(self)) } }
extension Double: PGEncodable { public var pgBind: PGBind { .text("\(self)") } }
extension Bool: PGEncodable { public var pgBind: PGBind { .text(self ? "t" : "f") } }
extension Array: PGEncodable where Element == UInt8 { public var pgBind: PGBind { .binary(self) } }

/// A `text[]` parameter.
public struct PGTextArray: PGEncodable {
    public let values: [String]
    public init(_ values: [String]) { self.values = values }
    public var pgBind: PGBind {
        let quoted = values.map { v in
            "\"" + v.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
        }
        return .text("{" + quoted.joined(separator: ",") + "}")
    }
}

/// A `bytea[]` parameter.
public struct PGByteaArray: PGEncodable {
    public let values: [[UInt8]]
    public init(_ values: [[UInt8]]) { self.values = values }
    public var pgBind: PGBind {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = [UInt8(ascii: "{")]
        for (i, value) in values.enumerated() {
            if i > 0 { text.append(UInt8(ascii: ",")) }
            text.append(contentsOf: Array("\"\\\\x".utf8))
            for byte in value { text.append(digits[Int(byte >> 4)]); text.append(digits[Int(byte & 0xF)]) }
            text.append(UInt8(ascii: "\""))
        }
        text.append(UInt8(ascii: "}"))
        return .text(String(decoding: text, as: UTF8.self))
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        out.reserveCapacity(count)
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }
}

/// A `bigint[]` parameter.
public struct PGInt64Array: PGEncodable {
    public let values: [Int64]
    public init(_ values: [Int64]) { self.values = values }
    public var pgBind: PGBind { .text("{" + values.map(String.init).joined(separator: ",") + "}") }
}
