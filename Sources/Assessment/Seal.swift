import Crypto

/// The Merkle tree of a batch (RFC 6962 §2.1): leaves are the batch's assessments in seq order,
/// each `SHA-256(0x00 ‖ seq as 8 bytes big-endian ‖ row_sha256)`; inner nodes are
/// `SHA-256(0x01 ‖ left ‖ right)`, split at the largest power of two below the leaf count.
/// Binding the seq into the leaf means a row moved to another seq changes the root.
public enum MerkleTree {
    public static func leafHash(seq: Int64, rowSHA256: [UInt8]) -> [UInt8] {
        // Fed from buffers: a million leaves per million-row seal.
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0x00)) { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: UInt64(bitPattern: seq).bigEndian) { hasher.update(bufferPointer: $0) }
        rowSHA256.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }

    /// The root over leaf hashes; the hash of the empty string for no leaves.
    public static func root(_ leaves: [[UInt8]]) -> [UInt8] {
        guard !leaves.isEmpty else { return AuditHash.sha256([]) }
        // Iterative form of the RFC 6962 recursion: pair neighbours level by level; an odd last
        // node is carried up unchanged, which gives the same tree as splitting at powers of two.
        var level = leaves
        while level.count > 1 {
            var next: [[UInt8]] = []
            next.reserveCapacity((level.count + 1) / 2)
            var i = 0
            while i + 1 < level.count {
                next.append(parent(level[i], level[i + 1]))
                i += 2
            }
            if i < level.count { next.append(level[i]) }
            level = next
        }
        return level[0]
    }
}

extension MerkleTree {
    /// The same root, computed leaf by leaf in O(log n) memory: a stack of the perfect subtrees
    /// so far (sizes: the binary digits of the count), folded right to left at the end.
    public struct Builder: Sendable {
        private var stack: [(hash: [UInt8], size: Int)] = []
        public private(set) var count = 0

        public init() {}

        public mutating func append(leafHash: [UInt8]) {
            var node = (hash: leafHash, size: 1)
            count += 1
            while let top = stack.last, top.size == node.size {
                stack.removeLast()
                node = (MerkleTree.parent(top.hash, node.hash), top.size * 2)
            }
            stack.append(node)
        }

        public var root: [UInt8] {
            guard var acc = stack.last?.hash else { return AuditHash.sha256([]) }
            for entry in stack.dropLast().reversed() { acc = MerkleTree.parent(entry.hash, acc) }
            return acc
        }
    }

    static func parent(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0x01)) { hasher.update(bufferPointer: $0) }
        left.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        right.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }
}

/// What a seal signs, length-prefixed under a domain tag so that no other message verifies.
/// Version 1: the batch, its organisation and criteria, how many assessments, their Merkle
/// root. Version 2 also proves completeness and time: the seal's number and time, and the
/// batch's counts (accepted = assessed + dead-lettered, and rejected), with the SHA-256 of the
/// list of dead-lettered seqs.
public struct SealStatement: Sendable, Equatable {
    public struct Completeness: Sendable, Equatable {
        public let seal: Int
        /// UTC, ISO 8601 with microseconds, exactly as stored (`2026-12-01T21:05:26.649010Z`).
        public let sealedAt: String
        public let accepted: Int64
        public let deadLettered: Int64
        public let rejected: Int64
        public let deadLetterSHA256: [UInt8]
        public init(seal: Int, sealedAt: String, accepted: Int64, deadLettered: Int64, rejected: Int64, deadLetterSHA256: [UInt8]) {
            self.seal = seal; self.sealedAt = sealedAt; self.accepted = accepted
            self.deadLettered = deadLettered; self.rejected = rejected; self.deadLetterSHA256 = deadLetterSHA256
        }
    }

    public static func tag(version: Int) -> String { "oversight-seal/\(version)" }
    public let batchID: String
    public let organisation: String
    public let criteriaSHA256: [UInt8]
    public let assessments: Int64
    public let merkleRoot: [UInt8]
    /// Nil: a version 1 statement.
    public let completeness: Completeness?
    public var version: Int { completeness == nil ? 1 : 2 }

    public init(batchID: String, organisation: String, criteriaSHA256: [UInt8], assessments: Int64, merkleRoot: [UInt8],
                completeness: Completeness? = nil) {
        self.batchID = batchID
        self.organisation = organisation
        self.criteriaSHA256 = criteriaSHA256
        self.assessments = assessments
        self.merkleRoot = merkleRoot
        self.completeness = completeness
    }

    public var bytes: [UInt8] {
        var parts = [Array(Self.tag(version: version).utf8), Array(batchID.utf8), Array(organisation.utf8), criteriaSHA256]
        if let c = completeness {
            parts += [Array(String(c.seal).utf8), Array(c.sealedAt.utf8), Array(String(c.accepted).utf8), Array(String(assessments).utf8),
                      Array(String(c.deadLettered).utf8), Array(String(c.rejected).utf8), c.deadLetterSHA256, merkleRoot]
        } else {
            parts += [Array(String(assessments).utf8), merkleRoot]
        }
        var out: [UInt8] = []
        for part in parts {
            withUnsafeBytes(of: UInt64(part.count).bigEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: part)
        }
        return out
    }

    /// The dead-lettered seqs as a seal stores them: 8 bytes big-endian each, ascending.
    public static func deadLetterList(_ seqs: [Int64]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(seqs.count * 8)
        for seq in seqs.sorted() { withUnsafeBytes(of: UInt64(bitPattern: seq).bigEndian) { out.append(contentsOf: $0) } }
        return out
    }
}

/// The coordinator's Ed25519 signing key (from its key file, or made for one run).
public struct SealKey: Sendable {
    private let key: Curve25519.Signing.PrivateKey

    public init() { key = Curve25519.Signing.PrivateKey() }

    /// From the 32-byte seed, as stored in a key file; nil if it is not 32 bytes.
    public init?(seed: [UInt8]) {
        guard seed.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else { return nil }
        self.key = key
    }

    public var seed: [UInt8] { Array(key.rawRepresentation) }
    public var publicKey: [UInt8] { Array(key.publicKey.rawRepresentation) }

    public func sign(_ statement: SealStatement) -> [UInt8] {
        // Ed25519 signing cannot fail for a valid key; swift-crypto only throws on invalid input.
        Array(try! key.signature(for: statement.bytes))
    }

    public static func isValid(signature: [UInt8], of statement: SealStatement, publicKey: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: statement.bytes)
    }
}
