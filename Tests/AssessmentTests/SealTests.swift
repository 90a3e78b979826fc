import Testing
import TestSupport
@testable import Assessment

@Suite struct SealTests {
    /// RFC 6962 §2.1 as written: split at the largest power of two smaller than n.
    func referenceRoot(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
        if leaves.isEmpty { return AuditHash.sha256([]) }
        if leaves.count == 1 { return leaves.first! }
        var k = 1
        while k * 2 < leaves.count { k *= 2 }
        let left = referenceRoot(leaves.prefix(k)), right = referenceRoot(leaves.dropFirst(k))
        return AuditHash.sha256([0x01] + left + right)
    }

    @Test func merkleRootIsRFC6962ForEverySize() {
        var random = SplitMix64(seed: 6962)
        for n in 0...70 {
            let leaves = (0..<n).map { i in
                MerkleTree.leafHash(seq: Int64(i + 1), rowSHA256: (0..<32).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            }
            #expect(MerkleTree.root(leaves) == referenceRoot(leaves[...]), "n = \(n)")
            var builder = MerkleTree.Builder()
            for leaf in leaves { builder.append(leafHash: leaf) }
            #expect(builder.root == MerkleTree.root(leaves), "streamed, n = \(n)")
        }
    }

    @Test func leavesBindTheirSeq() {
        let hash = AuditHash.sha256(Array("row".utf8))
        #expect(MerkleTree.leafHash(seq: 1, rowSHA256: hash) != MerkleTree.leafHash(seq: 2, rowSHA256: hash))
        // Swapping two rows' positions changes the root.
        let a = AuditHash.sha256([1]), b = AuditHash.sha256([2])
        #expect(MerkleTree.root([MerkleTree.leafHash(seq: 1, rowSHA256: a), MerkleTree.leafHash(seq: 2, rowSHA256: b)])
                != MerkleTree.root([MerkleTree.leafHash(seq: 1, rowSHA256: b), MerkleTree.leafHash(seq: 2, rowSHA256: a)]))
    }

    @Test func signaturesCoverEveryFieldOfTheStatement() {
        let key = SealKey()
        let statement = SealStatement(batchID: "6b0d1c6e-1f7a-4b8e-9d2c-3a4b5c6d7e8f", organisation: "amnesty",
                                      criteriaSHA256: AuditHash.sha256([9]), assessments: 1000, merkleRoot: AuditHash.sha256([7]))
        let signature = key.sign(statement)
        #expect(SealKey.isValid(signature: signature, of: statement, publicKey: key.publicKey))
        #expect(!SealKey.isValid(signature: signature, of: statement, publicKey: SealKey().publicKey))
        let changed = [
            SealStatement(batchID: "6b0d1c6e-1f7a-4b8e-9d2c-3a4b5c6d7e80", organisation: "amnesty", criteriaSHA256: statement.criteriaSHA256, assessments: 1000, merkleRoot: statement.merkleRoot),
            SealStatement(batchID: statement.batchID, organisation: "hrw", criteriaSHA256: statement.criteriaSHA256, assessments: 1000, merkleRoot: statement.merkleRoot),
            SealStatement(batchID: statement.batchID, organisation: "amnesty", criteriaSHA256: AuditHash.sha256([8]), assessments: 1000, merkleRoot: statement.merkleRoot),
            SealStatement(batchID: statement.batchID, organisation: "amnesty", criteriaSHA256: statement.criteriaSHA256, assessments: 999, merkleRoot: statement.merkleRoot),
            SealStatement(batchID: statement.batchID, organisation: "amnesty", criteriaSHA256: statement.criteriaSHA256, assessments: 1000, merkleRoot: AuditHash.sha256([6])),
        ]
        for other in changed { #expect(!SealKey.isValid(signature: signature, of: other, publicKey: key.publicKey)) }
        // A key survives its file: the seed gives back the same key.
        #expect(SealKey(seed: key.seed)?.publicKey == key.publicKey)
        #expect(SealKey(seed: [1, 2, 3]) == nil)
    }

    @Test func recordLimitsNameTheField() {
        var limits = RecordLimits()
        limits.maximumStringBytes = 100
        let long = String(repeating: "é", count: 51) // 102 bytes
        let record = Array(#"{"system":{"type":"alpr"},"sources":[{"url":"https://x"},{"publisher":"\#(long)"}]}"#.utf8)
        guard case .invalid(let violation) = RecordCheck.check(record, limits: limits) else {
            Issue.record("a field over the limit was accepted"); return
        }
        #expect(violation.field == "sources[1].publisher")
        #expect(violation.message.contains("102 bytes"))
        limits.maximumBytes = 50
        guard case .invalid(let size) = RecordCheck.check(record, limits: limits) else { Issue.record("size"); return }
        #expect(size.message.contains("the limit is 50 bytes"))
    }

    @Test func identifiersWithControlCharactersAreRefused() {
        let record = Array(#"{"id":"a\u0000b","system":{"type":"alpr"}}"#.utf8)
        guard case .invalid(let violation) = RecordCheck.check(record) else { Issue.record("accepted"); return }
        #expect(violation.field == "id")
        let elsewhere = Array(#"{"id":"ok","operator":{"name":"a\u0000b \"q\" \\ ☃"},"system":{"type":"alpr"}}"#.utf8)
        guard case .valid = RecordCheck.check(elsewhere) else { Issue.record("NUL in free text must be kept"); return }
    }
}
