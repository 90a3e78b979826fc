public import Foundation

/// A batch's identity: a UUID, chosen by the client or by the coordinator. It lives below both
/// the wire protocol and the audit store, which carry and keep the same value.
public struct BatchID: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let uuid: UUID

    public init(_ uuid: UUID = UUID()) { self.uuid = uuid }
    public init?(_ string: String) {
        guard let uuid = UUID(uuidString: string) else { return nil }
        self.uuid = uuid
    }

    public static let none = BatchID(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))

    /// Lower-case, as PostgreSQL prints a uuid.
    public var description: String { uuid.uuidString.lowercased() }

    /// The UUID's 16 bytes, in order (as the wire carries them).
    public var bytes: [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }

    public init(bytes: [UInt8]) {
        var raw = UUID().uuid
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes.prefix(16)) }
        uuid = UUID(uuid: raw)
    }

    public static func < (a: BatchID, b: BatchID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

extension BatchID: Codable {
    /// As its lower-case string, the form PostgreSQL and every message print.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = BatchID(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not a batch id (a UUID)")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
