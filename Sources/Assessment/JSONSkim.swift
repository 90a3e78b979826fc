/// Reads a few members of a JSON object without building the rest: where `audit verify` needs
/// five top-level values and each pack's `applies` of a result of five kilobytes, building the
/// whole tree cost most of its time (strings and arrays allocated for every finding, a million
/// times).
///
/// The skimmer validates what it walks as the parser would (the grammar, escapes, UTF-8), and
/// walks only objects whose keys are unescaped and in strictly increasing byte order, as
/// canonical JSON writes them (so no key is named twice, which the parser refuses). Any other
/// text gives nil, and callers fall back to `JSONParser`, which says what is wrong. Values come
/// back as byte ranges, decoded on request by `JSONParser`.
public struct JSONSkim {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The members of the object that spans `range` (the whole text by default), in order:
    /// each key as written between its quotes, and its value's bytes. nil if that is not an object
    /// the skimmer walks (see above).
    /// `validated`: the range lies inside a text an earlier call walked whole (its members'
    /// values are then found by counting brackets, not validated again).
    public func members(of range: Range<Int>? = nil, validated: Bool = false) -> [(key: ArraySlice<UInt8>, value: Range<Int>)]? {
        let range = range ?? 0..<bytes.count
        var out: [(key: ArraySlice<UInt8>, value: Range<Int>)] = []
        let walked = bytes.withUnsafeBufferPointer { b in
            Self.walkMembers(b, range, validated) { key, value in out.append((bytes[key], value)); return false }
        }
        return walked ? out : nil
    }

    /// `members()` of the whole text, and the elements of the array that the member named
    /// `key` holds, found on the same walk (nil if there is no such array member): a pack list
    /// read once, not walked again for its elements.
    public func members(expanding key: String) -> (members: [(key: ArraySlice<UInt8>, value: Range<Int>)], elements: [Range<Int>]?)? {
        var out: [(key: ArraySlice<UInt8>, value: Range<Int>)] = []
        var elements: [Range<Int>]?
        let wanted = Array(key.utf8)
        let walked = bytes.withUnsafeBufferPointer { b in
            withUnsafeMutablePointer(to: &elements) { slot in
                Self.walkMembers(b, 0..<bytes.count, false, expanding: wanted, expanded: slot) { key, value in
                    out.append((bytes[key], value)); return false
                }
            }
        }
        return walked ? (out, elements) : nil
    }

    /// Walks the members of the object spanning `range`, calling `visit` with each key's and
    /// value's bytes until it returns true. False if the text is not such an object (as far as
    /// the walk went).
    private static func walkMembers(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ validated: Bool,
                                    expanding: [UInt8]? = nil, expanded: UnsafeMutablePointer<[Range<Int>]?>? = nil,
                                    _ visit: (Range<Int>, Range<Int>) -> Bool) -> Bool {
        var i = skipSpace(bytes, range.lowerBound, range.upperBound)
        guard i < range.upperBound, bytes[i] == UInt8(ascii: "{") else { return false }
        i = skipSpace(bytes, i + 1, range.upperBound)
        if i < range.upperBound, bytes[i] == UInt8(ascii: "}") {
            return skipSpace(bytes, i + 1, range.upperBound) == range.upperBound
        }
        var previous: Range<Int>?
        while true {
            guard i < range.upperBound, bytes[i] == UInt8(ascii: "\""), let keyEnd = stringEnd(bytes, i, range.upperBound) else { return false }
            let key = (i + 1)..<(keyEnd - 1)
            if bytes[key].contains(UInt8(ascii: "\\")) { return false }
            if !validated { guard previous.map({ precedes(bytes, $0, key) }) ?? true else { return false } }
            previous = key
            i = skipSpace(bytes, keyEnd, range.upperBound)
            guard i < range.upperBound, bytes[i] == UInt8(ascii: ":") else { return false }
            let start = skipSpace(bytes, i + 1, range.upperBound)
            let end: Int
            if let expanding, let expanded, expanded.pointee == nil, start < range.upperBound, bytes[start] == UInt8(ascii: "["),
               bytes[key].elementsEqual(expanding) {
                // The array's elements are found (and validated) on the walk itself.
                guard let (elements, arrayEnd) = walkElements(bytes, start, range.upperBound, validated) else { return false }
                expanded.pointee = elements
                end = arrayEnd
            } else {
                guard let valueEnd = validated ? skippedEnd(bytes, start, range.upperBound) : valueEnd(bytes, start, range.upperBound) else { return false }
                end = valueEnd
            }
            if visit(key, start..<end) { return true }
            i = skipSpace(bytes, end, range.upperBound)
            guard i < range.upperBound else { return false }
            if bytes[i] == UInt8(ascii: ",") { i = skipSpace(bytes, i + 1, range.upperBound); continue }
            guard bytes[i] == UInt8(ascii: "}") else { return false }
            return skipSpace(bytes, i + 1, range.upperBound) == range.upperBound
        }
    }

    /// The value of the first member named `key` of the object spanning `range` (the first, as
    /// `JSONValue`'s subscript reads it), walking no further than that member: so it vouches for
    /// the text only up to there unless the text was validated before. `.some(nil)`: no such
    /// member; nil: the object cannot be skimmed.
    public func member(_ key: String, of range: Range<Int>? = nil, validated: Bool = false) -> Range<Int>?? {
        let wanted = Array(key.utf8)
        var found: Range<Int>?
        let walked = bytes.withUnsafeBufferPointer { b in
            Self.walkMembers(b, range ?? 0..<bytes.count, validated) { k, value in
                guard b[k].elementsEqual(wanted) else { return false }
                found = value
                return true
            }
        }
        return walked ? .some(found) : nil
    }

    /// The elements of the array that spans `range`, as byte ranges; nil if it is not one.
    public func elements(of range: Range<Int>, validated: Bool = false) -> [Range<Int>]? {
        bytes.withUnsafeBufferPointer { Self.elements($0, range, validated) }
    }

    private static func elements(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ validated: Bool) -> [Range<Int>]? {
        let start = skipSpace(bytes, range.lowerBound, range.upperBound)
        guard let (out, end) = walkElements(bytes, start, range.upperBound, validated),
              skipSpace(bytes, end, range.upperBound) == range.upperBound else { return nil }
        return out
    }

    /// The elements of the array opening at `start` and one past its closing bracket.
    private static func walkElements(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ limit: Int, _ validated: Bool) -> ([Range<Int>], Int)? {
        guard start < limit, bytes[start] == UInt8(ascii: "[") else { return nil }
        var i = skipSpace(bytes, start + 1, limit)
        var out: [Range<Int>] = []
        if i < limit, bytes[i] == UInt8(ascii: "]") { return (out, i + 1) }
        while true {
            guard let end = validated ? skippedEnd(bytes, i, limit) : valueEnd(bytes, i, limit) else { return nil }
            out.append(i..<end)
            i = skipSpace(bytes, end, limit)
            guard i < limit else { return nil }
            if bytes[i] == UInt8(ascii: ",") { i = skipSpace(bytes, i + 1, limit); continue }
            guard bytes[i] == UInt8(ascii: "]") else { return nil }
            return (out, i + 1)
        }
    }

    /// The value's bytes parsed (small values: a string, a number, a literal).
    public func value(_ range: Range<Int>) -> JSONValue? {
        try? JSONParser.parse(bytes[range])
    }

    /// The string a value holds, without parsing when it holds no escape; nil if not a string.
    public func string(_ range: Range<Int>) -> String? {
        guard range.count >= 2, bytes[range.lowerBound] == UInt8(ascii: "\""), bytes[range.upperBound - 1] == UInt8(ascii: "\"") else { return nil }
        let inner = bytes[(range.lowerBound + 1)..<(range.upperBound - 1)]
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        return value(range)?.stringValue
    }

    @inline(__always)
    private static func skipSpace(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ end: Int) -> Int {
        var i = from
        while i < end {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return i
            }
        }
        return i
    }

    /// Whether any of the eight bytes may be a quote, a backslash, a control character or not
    /// ASCII (the classic has-zero and has-less-than tests; a false alarm only means the bytes
    /// are looked at one by one, which is always correct).
    @inline(__always)
    static func mayNeedLook(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
        let control = (word &- 0x20 &* ones) & ~word & highs
        return (word & highs) | control | hasZero(word ^ (0x22 &* ones)) | hasZero(word ^ (0x5C &* ones)) != 0
    }

    /// One past the closing quote of the string opening at `start`: escapes as JSON allows
    /// them, no control characters, and UTF-8 that validates.
    @inline(__always)
    private static func stringEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        var i = start + 1
        var ascii = true
        while i < end {
            // Most bytes are plain ASCII: eight at a time while none of them needs a look.
            if i + 8 <= end, !mayNeedLook(UnsafeRawPointer(bytes.baseAddress! + i).loadUnaligned(as: UInt64.self)) {
                i += 8
                continue
            }
            let byte = bytes[i]
            if byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") { i += 1; continue }
            switch byte {
            case UInt8(ascii: "\""):
                if !ascii, String(validating: bytes[(start + 1)..<i], as: UTF8.self) == nil { return nil }
                return i + 1
            case UInt8(ascii: "\\"):
                guard i + 1 < end else { return nil }
                switch bytes[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard i + 6 <= end, bytes[(i + 2)..<(i + 6)].allSatisfy({ $0.isHexDigit }) else { return nil }
                    // A surrogate's validity is left to the parser: such a text is not skimmed.
                    guard bytes[i + 2] | 0x20 != UInt8(ascii: "d") else { return nil }
                    i += 6
                default: return nil
                }
            case 0x00..<0x20: return nil
            case 0x80...: ascii = false; i += 1
            default: i += 1
            }
        }
        return nil
    }

    /// One past the end of the JSON value starting at `start`, validated as the grammar has it;
    /// nil if it is not a value.
    private static func valueEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, depth: Int = 0) -> Int? {
        guard start < end, depth < 512 else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "\""): return stringEnd(bytes, start, end)
        case UInt8(ascii: "{"):
            var i = skipSpace(bytes, start + 1, end)
            if i < end, bytes[i] == UInt8(ascii: "}") { return i + 1 }
            var previous: Range<Int>?
            while true {
                guard i < end, bytes[i] == UInt8(ascii: "\""), let keyEnd = stringEnd(bytes, i, end) else { return nil }
                let key = (i + 1)..<(keyEnd - 1)
                guard !bytes[key].contains(UInt8(ascii: "\\")), previous.map({ precedes(bytes, $0, key) }) ?? true else { return nil }
                previous = key
                i = skipSpace(bytes, keyEnd, end)
                guard i < end, bytes[i] == UInt8(ascii: ":"), let valueEnd = valueEnd(bytes, skipSpace(bytes, i + 1, end), end, depth: depth + 1) else { return nil }
                i = skipSpace(bytes, valueEnd, end)
                guard i < end else { return nil }
                if bytes[i] == UInt8(ascii: "}") { return i + 1 }
                guard bytes[i] == UInt8(ascii: ",") else { return nil }
                i = skipSpace(bytes, i + 1, end)
            }
        case UInt8(ascii: "["):
            var i = skipSpace(bytes, start + 1, end)
            if i < end, bytes[i] == UInt8(ascii: "]") { return i + 1 }
            while true {
                guard let valueEnd = valueEnd(bytes, i, end, depth: depth + 1) else { return nil }
                i = skipSpace(bytes, valueEnd, end)
                guard i < end else { return nil }
                if bytes[i] == UInt8(ascii: "]") { return i + 1 }
                guard bytes[i] == UInt8(ascii: ",") else { return nil }
                i = skipSpace(bytes, i + 1, end)
            }
        case UInt8(ascii: "t"): return literal(bytes, "true", start, end)
        case UInt8(ascii: "f"): return literal(bytes, "false", start, end)
        case UInt8(ascii: "n"): return literal(bytes, "null", start, end)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return numberEnd(bytes, start, end)
        default: return nil
        }
    }

    /// Whether key `a` comes strictly before key `b` in byte order. Keys out of that order
    /// (canonical JSON has none) are left to the parser, which refuses a key named twice.
    @inline(__always)
    private static func precedes(_ bytes: UnsafeBufferPointer<UInt8>, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        let n = min(a.count, b.count)
        var k = 0
        while k < n {
            let x = bytes[a.lowerBound + k], y = bytes[b.lowerBound + k]
            if x != y { return x < y }
            k += 1
        }
        return a.count < b.count
    }

    /// One past the end of a value already validated: strings skipped to their closing quote,
    /// brackets counted.
    private static func skippedEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        guard start < end else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "\""):
            var i = start + 1
            while i < end {
                if bytes[i] == UInt8(ascii: "\"") { return i + 1 }
                i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1
            }
            return nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var i = start
            while i < end {
                switch bytes[i] {
                case UInt8(ascii: "\""):
                    i += 1
                    while i < end, bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return i + 1 }
                default: break
                }
                i += 1
            }
            return nil
        default:
            var i = start
            while i < end {
                switch bytes[i] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D: return i > start ? i : nil
                default: i += 1
                }
            }
            return i > start ? i : nil
        }
    }

    @inline(__always)
    private static func literal(_ bytes: UnsafeBufferPointer<UInt8>, _ word: StaticString, _ start: Int, _ end: Int) -> Int? {
        let count = word.utf8CodeUnitCount
        guard start + count <= end else { return nil }
        for k in 0..<count where bytes[start + k] != word.utf8Start[k] { return nil }
        return start + count
    }

    /// A number as JSON writes it: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    @inline(__always)
    private static func numberEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        var i = start
        func digits() -> Int {
            let from = i
            while i < end, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
            return i - from
        }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < end else { return nil }
        if bytes[i] == UInt8(ascii: "0") { i += 1 } else if digits() == 0 { return nil }
        if i < end, bytes[i] == UInt8(ascii: ".") { i += 1; guard digits() > 0 else { return nil } }
        if i < end, bytes[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < end, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return nil }
        }
        return i
    }
}

private extension UInt8 {
    var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self | 0x20)
    }
}
