import Identifiers

extension ByteWriter {
    mutating func batchID(_ id: BatchID) { raw(id.bytes) }
}

extension ByteReader {
    mutating func batchID() throws(WireError) -> BatchID { BatchID(bytes: try raw(16, "batch id")) }
}
