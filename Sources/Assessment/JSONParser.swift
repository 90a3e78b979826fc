/// Where and why a JSON text is malformed.
public struct JSONSyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Byte offset of the problem in the input.
    public let offset: Int
    public let message: String
    public var description: String { "invalid JSON at byte \(offset + 1): \(message)" }
}

/// A strict RFC 8259 parser over UTF-8 bytes: no trailing commas, no comments, no duplicate
/// keys, bounded nesting. Written by hand because it is on the hot path of intake and scoring.
public struct JSONParser {
    public static let maximumDepth = 64

    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONSyntaxError) -> JSONValue {
        var shape = Shape()
        return try parse(bytes, shape: &shape)
    }

    /// What the parser noticed about a text on the way, so that callers need not walk it again.
    public struct Shape: Sendable {
        /// UTF-8 length of the longest string (key or value): a limit on strings costs one
        /// comparison.
        public var longestString = 0
        /// The text is exactly its own canonical JSON (`JSONValue.canonicalBytes`): no
        /// whitespace, keys in byte order, no escapes, integers only. False means "not
        /// known to be": a text with an escape or a fraction is left to the canonical writer.
        public var isCanonical = true
        public init() {}
    }

    public static func parse(_ bytes: some Collection<UInt8>, shape: inout Shape) throws(JSONSyntaxError) -> JSONValue {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
            var parser = JSONParser(buffer)
            parser.skipWhitespace()
            let value = try parser.parseValue(depth: 0)
            parser.skipWhitespace()
            if parser.index != buffer.count {
                throw parser.error("unexpected data after the JSON value")
            }
            shape.longestString = parser.longestString
            shape.isCanonical = parser.canonical
            return value
        }
    }

    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// Parses and also returns the 1-based line where each member and element starts, keyed by
    /// its path (`rules[3].when.all[1]`): for error messages that point into a file.
    public static func parseWithLines(_ text: String) throws(JSONSyntaxError) -> (value: JSONValue, lines: [String: Int]) {
        let array = Array(text.utf8)
        return try array.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
            var parser = JSONParser(buffer)
            parser.lines = [:]
            parser.skipWhitespace()
            let value = try parser.parseValue(depth: 0)
            parser.skipWhitespace()
            if parser.index != buffer.count { throw parser.error("unexpected data after the JSON value") }
            return (value, parser.lines ?? [:])
        }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    /// Line tracking, only when `lines` is not nil.
    private var line = 1
    private var lines: [String: Int]?
    private var path: [String] = []
    /// UTF-8 length of the longest string so far, and whether the last string was all ASCII.
    private var longestString = 0
    private var lastStringWasASCII = false
    private var canonical = true

    private mutating func record(_ component: String) {
        guard lines != nil else { return }
        var joined = ""
        for part in path { joined += part.hasPrefix("[") || joined.isEmpty ? part : "." + part }
        joined += component.hasPrefix("[") || joined.isEmpty ? component : "." + component
        lines![joined] = line
    }

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    private func error(_ message: String) -> JSONSyntaxError {
        JSONSyntaxError(offset: index, message: message)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x0A: line += 1; index += 1; canonical = false
            case 0x20, 0x09, 0x0D: index += 1; canonical = false
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard index < bytes.count else { throw error("unexpected end of input, expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected character '\(printable(bytes[index]))', expected a value")
        }
    }

    private func printable(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : "\\u{\(String(byte, radix: 16))}"
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONSyntaxError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("unexpected end of input in literal") }
        let start = literal.utf8Start
        for i in 0..<count where bytes[index + i] != start[i] {
            throw error("invalid literal, expected '\(literal)'")
        }
        index += count
    }

    private mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= Self.maximumDepth else { throw error("nesting deeper than \(Self.maximumDepth) levels") }
        index += 1
        var members: [(key: String, value: JSONValue)] = []
        var keysOrdered = true
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error("expected a string key in object")
            }
            let keyOffset = index
            let key = try parseString()
            // Keys are compared as Strings (canonical equivalence, as every reader of the record
            // compares them). While the keys are ASCII and each sorts after the one before in
            // byte order, as in canonical JSON, a new key equals none of them: one comparison,
            // not n.
            keysOrdered = keysOrdered && lastStringWasASCII && members.last.map { $0.key.utf8.lexicographicallyPrecedes(key.utf8) } ?? true
            if !keysOrdered {
                canonical = false
                try members.withUnsafeBufferPointer { members throws(JSONSyntaxError) in
                    for m in members.indices where members[m].key == key {
                        throw JSONSyntaxError(offset: keyOffset, message: "duplicate key \"\(key)\"")
                    }
                }
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after object key") }
            index += 1
            skipWhitespace()
            let value: JSONValue
            if lines != nil {
                record(key)
                path.append(key)
                value = try parseValue(depth: depth)
                path.removeLast()
            } else {
                value = try parseValue(depth: depth)
            }
            members.append((key, value))
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw error("expected ',' or '}' in object")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= Self.maximumDepth else { throw error("nesting deeper than \(Self.maximumDepth) levels") }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            skipWhitespace()
            if lines != nil {
                let component = "[\(elements.count)]"
                record(component)
                path.append(component)
                elements.append(try parseValue(depth: depth))
                path.removeLast()
            } else {
                elements.append(try parseValue(depth: depth))
            }
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw error("expected ',' or ']' in array")
        }
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes, plain bytes. ASCII needs no validation; anything else is
        // validated by String(validating:).
        var ascii = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                longestString = max(longestString, slice.count)
                lastStringWasASCII = ascii
                if ascii { return String(decoding: slice, as: UTF8.self) }
                guard let string = String(validating: slice, as: UTF8.self) else {
                    throw JSONSyntaxError(offset: start, message: "string is not valid UTF-8")
                }
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("control character in string (escape it)") }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        var scalars = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                longestString = max(longestString, scalars.count)
                lastStringWasASCII = false
                canonical = false
                guard let string = String(validating: scalars, as: UTF8.self) else {
                    throw JSONSyntaxError(offset: start, message: "string is not valid UTF-8")
                }
                return string
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw error("unexpected end of input in escape") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""): scalars.append(0x22)
                case UInt8(ascii: "\\"): scalars.append(0x5C)
                case UInt8(ascii: "/"): scalars.append(0x2F)
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    if (0xD800...0xDBFF).contains(code) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired UTF-16 surrogate in \\u escape")
                        }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid UTF-16 low surrogate") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(code) {
                        throw error("unpaired UTF-16 surrogate in \\u escape")
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw error("invalid \\u escape") }
                    scalars.append(contentsOf: UTF8.encode(scalar)!)
                default:
                    throw error("invalid escape '\\\(printable(escaped))'")
                }
            default:
                if byte < 0x20 { throw error("control character in string (escape it)") }
                scalars.append(byte)
                index += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("unexpected end of input in \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> Double {
        let number = Self.number(in: bytes, at: index)
        switch number.outcome {
        case .value(let value, let plainInteger):
            // "-0" reads as -0.0, which canonical JSON writes "0".
            if !plainInteger || (value == 0 && bytes[index] == UInt8(ascii: "-")) { canonical = false }
            index = number.end
            return value
        case .malformed(let message):
            index = number.end
            throw error(message)
        case .outOfRange:
            throw JSONSyntaxError(offset: index, message: "number out of range")
        }
    }

    enum NumberOutcome {
        /// `plainInteger`: no fraction or exponent, at most 15 digits (read without strtod).
        case value(Double, plainInteger: Bool)
        case malformed(String)
        case outOfRange
    }

    /// The number that starts at `start`, by RFC 8259's grammar, read as a Double (shared by
    /// the parser and the intake scan, so that they read every number alike): where it ends
    /// (where it went wrong, when malformed) and its value.
    static func number(in bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> (end: Int, outcome: NumberOutcome) {
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9") }
        var index = start
        let negative = index < bytes.count && bytes[index] == UInt8(ascii: "-")
        var plain = true
        if negative { index += 1 }
        guard isDigit(index) else { return (index, .malformed("expected a digit in number")) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if isDigit(index) { return (index, .malformed("leading zero in number")) }
        } else {
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            plain = false
            index += 1
            guard isDigit(index) else { return (index, .malformed("expected a digit after '.'")) }
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            plain = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard isDigit(index) else { return (index, .malformed("expected a digit in exponent")) }
            while isDigit(index) { index += 1 }
        }
        // A plain integer of at most 15 digits is exact in a Double: no text, no strtod.
        if plain, index - start - (negative ? 1 : 0) <= 15 {
            var magnitude: Int64 = 0
            for i in (negative ? start + 1 : start)..<index { magnitude = magnitude * 10 + Int64(bytes[i] &- UInt8(ascii: "0")) }
            return (index, .value(negative ? -Double(magnitude) : Double(magnitude), plainInteger: true))
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { return (index, .outOfRange) }
        return (index, .value(value, plainInteger: false))
    }
}
