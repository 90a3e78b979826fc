public import Foundation

/// A batch's identity: a UUID, chosen by the client or by the coordinator.
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

    var bytes: [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }

    init(bytes: [UInt8]) {
        var raw = UUID().uuid
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes.prefix(16)) }
        uuid = UUID(uuid: raw)
    }

    public static func < (a: BatchID, b: BatchID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

extension ByteWriter {
    mutating func batchID(_ id: BatchID) { raw(id.bytes) }
}

extension ByteReader {
    mutating func batchID() throws(WireError) -> BatchID { BatchID(bytes: try raw(16, "batch id")) }
}
