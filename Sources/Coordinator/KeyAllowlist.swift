import Assessment
import Foundation
import ZeroMQ

/// The public keys allowed in, read from a directory of certificate files (`*.key`, as
/// `oversight keys generate` writes them). A client key must name its organisation.
public struct KeyAllowlist: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let organisation: String?
        public let file: String
    }

    public private(set) var entries: [[UInt8]: Entry] = [:]
    /// Files skipped, with the reason (reported by the caller, never fatal: one bad file must not
    /// lock every peer out on a reload).
    public private(set) var problems: [String] = []

    public init() {}

    public init(directory: String, requireOrganisation: Bool) throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted() } catch {
            throw AllowlistError(message: "cannot read the key directory \(directory): \(error.localizedDescription)")
        }
        for name in names where name.hasSuffix(".key") {
            let path = (directory as NSString).appendingPathComponent(name)
            do {
                let certificate = try CertificateFile.read(path)
                guard let key = certificate.curvePublicKey else { continue }
                if certificate.curveSecretKey != nil {
                    problems.append("\(path): holds a secret key; an allowlist needs only public certificates (skipped)")
                    continue
                }
                let organisation = certificate["metadata", "organisation"]
                if requireOrganisation {
                    guard let organisation, Organisation.isValid(organisation) else {
                        problems.append("\(path): a client key needs `organisation = \"…\"` in its metadata (lower-case letters, digits, . _ -) (skipped)")
                        continue
                    }
                }
                entries[key] = Entry(name: certificate["metadata", "name"] ?? String(name.dropLast(4)), organisation: organisation, file: path)
            } catch {
                problems.append("\(error) (skipped)")
            }
        }
    }
}

public struct AllowlistError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

public enum Organisation {
    /// Batches of clients that do not authenticate (plain TCP on loopback) belong here.
    public static let local = "local"

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count), let first = bytes.first,
              (0x61...0x7A).contains(first) || (0x30...0x39).contains(first) else { return false }
        return bytes.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }
}

