#if canImport(Glibc)
import Glibc
#endif

/// A CURVE certificate file in the ZPL format czmq's `zcert` uses (ZeroMQ RFC 4), so keys made
/// by `oversight keys generate`, `zcert` or `curve_keygen`-plus-an-editor all work:
///
///     metadata
///         name = "worker-7"
///     curve
///         public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
///         secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"   (secret file only)
///
/// Sections and names are kept in file order; values are strings.
public struct Certificate: Sendable, Equatable {
    public var sections: [(name: String, entries: [(key: String, value: String)])]

    public init(sections: [(name: String, entries: [(key: String, value: String)])] = []) {
        self.sections = sections
    }

    public static func == (a: Certificate, b: Certificate) -> Bool {
        a.sections.count == b.sections.count && zip(a.sections, b.sections).allSatisfy { x, y in
            x.name == y.name && x.entries.count == y.entries.count
                && zip(x.entries, y.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        }
    }

    public subscript(section: String, key: String) -> String? {
        get { sections.first { $0.name == section }?.entries.first { $0.key == key }?.value }
        set {
            let s = sections.firstIndex { $0.name == section } ?? { sections.append((section, [])); return sections.count - 1 }()
            if let e = sections[s].entries.firstIndex(where: { $0.key == key }) {
                if let newValue { sections[s].entries[e].value = newValue } else { sections[s].entries.remove(at: e) }
            } else if let newValue {
                sections[s].entries.append((key, newValue))
            }
        }
    }

    /// The CURVE public key (always present in a valid certificate).
    public var curvePublicKey: [UInt8]? { self["curve", "public-key"].flatMap(Z85.decode).flatMap { $0.count == 32 ? $0 : nil } }
    /// The CURVE secret key: only in a secret certificate.
    public var curveSecretKey: [UInt8]? { self["curve", "secret-key"].flatMap(Z85.decode).flatMap { $0.count == 32 ? $0 : nil } }

    /// The same certificate without any `secret-key` entry: what may be handed to others.
    public var publicPart: Certificate {
        Certificate(sections: sections.map { ($0.name, $0.entries.filter { !$0.key.hasSuffix("secret-key") }) })
    }

    // MARK: Text

    public struct SyntaxError: Error, CustomStringConvertible, Sendable {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    public init(parsing text: String) throws(SyntaxError) {
        sections = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw[...]
            let content = line.drop { $0 == " " }
            if content.isEmpty || content.hasPrefix("#") { continue }
            let indent = line.count - content.count
            if indent == 0 {
                let name = String(content).trimmingTrailingSpaces
                guard Self.isName(name) else { throw SyntaxError(line: index + 1, message: "expected a section name, got \"\(name)\"") }
                sections.append((name, []))
                continue
            }
            guard !sections.isEmpty else { throw SyntaxError(line: index + 1, message: "an indented entry must follow a section name") }
            guard let equals = content.firstIndex(of: "=") else {
                throw SyntaxError(line: index + 1, message: "expected `name = \"value\"`")
            }
            let key = String(content[..<equals]).trimmingTrailingSpaces
            var value = Substring(String(content[content.index(after: equals)...]).trimmingTrailingSpaces).drop { $0 == " " }
            guard Self.isName(key) else { throw SyntaxError(line: index + 1, message: "\"\(key)\" is not a valid name") }
            if value.hasPrefix("\"") {
                guard value.count >= 2, value.hasSuffix("\"") else { throw SyntaxError(line: index + 1, message: "unterminated quoted value") }
                value = value.dropFirst().dropLast()
            }
            sections[sections.count - 1].entries.append((key, String(value)))
        }
    }

    /// The ZPL text, with a header comment.
    public func text(header: [String]) -> String {
        var out = header.map { "#   \($0)\n" }.joined() + (header.isEmpty ? "" : "\n")
        for section in sections {
            out += section.name + "\n"
            for entry in section.entries { out += "    \(entry.key) = \"\(entry.value)\"\n" }
        }
        return out
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "$-_@.&+/".utf8.contains(b)
        }
    }
}

extension String {
    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// Reading and writing certificate files with the permissions a secret needs.
public enum CertificateFile {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let message: String
        public var description: String { "\(path): \(message)" }
    }

    /// Reads a certificate. With `secret`, refuses a file that group or others may read, and one
    /// that is not a regular file, before reading a byte of it.
    public static func read(_ path: String, secret: Bool = false) throws(Failure) -> Certificate {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw Failure(path: path, message: "cannot read: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw Failure(path: path, message: "not a regular file") }
        if secret && info.st_mode & 0o077 != 0 {
            let mode = String(info.st_mode & 0o777, radix: 8)
            throw Failure(path: path, message: "secret key file is readable by others (mode \(mode)); run `chmod 600 \(path)`")
        }
        guard info.st_size <= 64 * 1024 else { throw Failure(path: path, message: "too large for a certificate (\(info.st_size) bytes)") }
        guard let file = fopen(path, "r") else {
            throw Failure(path: path, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw Failure(path: path, message: "not UTF-8 text") }
        let certificate: Certificate
        do { certificate = try Certificate(parsing: text) } catch { throw Failure(path: path, message: error.description) }
        guard certificate.curvePublicKey != nil else {
            throw Failure(path: path, message: "no valid `curve` / `public-key` (40 Z85 characters); is this a certificate made by `oversight keys generate`?")
        }
        if secret {
            guard let secretKey = certificate.curveSecretKey else {
                throw Failure(path: path, message: "no `secret-key`: this is a public certificate; give the `.key_secret` file")
            }
            guard let derived = try? CurveKeyPair(secretKey: secretKey), derived.publicKey == certificate.curvePublicKey else {
                throw Failure(path: path, message: "the public key does not belong to the secret key; the file is damaged")
            }
        }
        return certificate
    }

    /// Writes `text` to a new file (never overwrites) with `mode`, flushed to disk.
    public static func create(_ path: String, text: String, mode: UInt32) throws(Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "already exists; remove it first or choose another name" : String(cString: strerror(errno))
            throw Failure(path: path, message: reason)
        }
        defer { close(fd) }
        // The umask may have narrowed the mode; it must never have widened it.
        _ = fchmod(fd, mode_t(mode))
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(path: path, message: "write failed: \(String(cString: strerror(errno)))")
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw Failure(path: path, message: "fsync failed: \(String(cString: strerror(errno)))") }
    }
}
