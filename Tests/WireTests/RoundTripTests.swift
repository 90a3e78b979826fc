import Identifiers
import Testing
import TestSupport
@testable import Wire

@Suite struct RoundTripTests {
    static let batch = BatchID()

    static let workerMessages: [WorkerMessage] = [
        .ready(name: "worker-1 é", credit: 512),
        .ready(name: "w", credit: 3, held: [HeldJobs(batchID: BatchID(), jobs: [(1, 0), (7, 2)]), HeldJobs(batchID: BatchID(), jobs: [(9, 1)])]),
        .done(batchID: batch, committed: [1, 2, 3, Int64.max], failed: [JobFailure(seq: 4, reason: "bad record: \"x\"")]),
        .done(batchID: batch, committed: [], failed: []),
        .credit(64),
        .heartbeat,
        .disconnect,
    ]

    static let coordinatorMessages: [CoordinatorMessage] = [
        .jobs(JobBundle(batchID: batch, criteriaSHA256: Array(repeating: 7, count: 32),
                        jobs: [Job(seq: 1, attempt: 0, record: Array("{}".utf8)), Job(seq: 2, attempt: 2, record: [])])),
        .heartbeat,
        .disconnect,
    ]

    static let clientRequests: [ClientRequest] = [
        .open(batchID: batch, name: "atlas", packs: [.builtIn("eu-ai-act-2024"), .document(#"{"id":"mine"}"#), .evidence(#"{"id":"ours","kind":"evidence"}"#)], source: "atlas.csv"),
        .open(batchID: batch, name: "again", packs: [.builtIn("gdpr-dpia")], source: "a.jsonl",
              options: BatchOptions(asOf: "2026-08-02", reassessmentOf: BatchID("0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70")!)),
        .chunk(batchID: batch, number: 3, records: [
            SubmittedRecord(line: 10, body: .json(Array(#"{"id":"x"}"#.utf8))),
            SubmittedRecord(line: 11, body: .malformed(raw: [0xFF, 0x00], field: "system.type", message: "bad")),
            SubmittedRecord(line: 12, body: .oversized(prefix: Array(repeating: 0x7B, count: 100), bytes: 5_000_000, sha256: Array(repeating: 9, count: 32))),
        ]),
        .close(batchID: batch, chunks: 3),
        .status(batchID: batch),
        .retry(batchID: batch),
        .cancel(batchID: batch),
        .counters,
        .heartbeat(nonce: 0),
        .heartbeat(nonce: UInt64.max),
    ]

    static let clientReplies: [ClientReply] = [
        .opened(batchID: batch, acknowledgedChunks: 2, window: 4, input: StoredInput(lastLine: 2000, sha256: Array(repeating: 3, count: 32))),
        .acknowledged(batchID: batch, number: 3, accepted: 999, rejections: [Rejection(line: 11, field: "f", message: "m")]),
        .closed(BatchProgress(batchID: batch, state: .running, accepted: 10, rejected: 1, done: 2, failed: 0)),
        .status(BatchProgress(batchID: batch, state: .completed, accepted: 10, rejected: 1, done: 10, failed: 0)),
        .error(code: 2, batchID: nil, chunk: nil, message: "unknown pack"),
        .error(code: 6, batchID: batch, chunk: 7, message: "batch closed"),
        .counters([Counter(name: "done_without_assessment", value: 3), Counter(name: "worker_disconnects", value: 0)]),
        .heartbeat(nonce: 1, instance: 0x8000_0000_0000_0001),
    ]

    @Test(arguments: workerMessages) func workerMessage(_ m: WorkerMessage) throws {
        #expect(try WorkerMessage.decode(m.encode()[...]) == m)
    }

    @Test(arguments: coordinatorMessages) func coordinatorMessage(_ m: CoordinatorMessage) throws {
        #expect(try CoordinatorMessage.decode(m.encode()[...]) == m)
    }

    @Test(arguments: clientRequests) func clientRequest(_ m: ClientRequest) throws {
        #expect(try ClientRequest.decode(m.encode()[...]) == m)
    }

    /// An OPEN that ends after its source (as clients written before the options send it) is a
    /// batch with no options: as of the coordinator's today, linked to nothing.
    @Test func anOpenWithoutOptionsHasNone() throws {
        var frames = ClientRequest.open(batchID: Self.batch, name: "n", packs: [.builtIn("gdpr-dpia")], source: "s").encode()
        frames[frames.count - 1].removeLast(2 + 16)  // the empty as_of string and the zero link
        #expect(try ClientRequest.decode(frames[...]) == .open(batchID: Self.batch, name: "n", packs: [.builtIn("gdpr-dpia")], source: "s"))
        frames[frames.count - 1] += [0, 0, 0, 1]  // half an option
        #expect(throws: WireError.self) { try ClientRequest.decode(frames[...]) }
    }

    @Test(arguments: clientReplies) func clientReply(_ m: ClientReply) throws {
        #expect(try ClientReply.decode(m.encode()[...]) == m)
    }

    @Test func everyFrameStartsWithTheProtocolAndACommand() {
        for m in Self.workerMessages {
            let frames = m.encode()
            #expect(frames[0] == Array("OVS2".utf8))
            #expect(frames[1].count == 1)
        }
    }

    /// HEARTBEAT's bytes as `Schemas/protocol.md` lays them out: an outsider's client builds them
    /// from the table, not from this codec.
    @Test func clientHeartbeatsAreLaidOutAsSpecified() throws {
        let request = ClientRequest.heartbeat(nonce: 0x0102_0304_0506_0708).encode()
        #expect(request == [Array("OVS2".utf8), [0x30], [8, 7, 6, 5, 4, 3, 2, 1]])
        let reply = ClientReply.heartbeat(nonce: 9, instance: 0xA0A1_A2A3_A4A5_A6A7).encode()
        #expect(reply == [Array("OVS2".utf8), [0x31], [9, 0, 0, 0, 0, 0, 0, 0, 0xA7, 0xA6, 0xA5, 0xA4, 0xA3, 0xA2, 0xA1, 0xA0]])
        // A nonce short of 8 bytes, or with bytes after it, is refused.
        #expect(throws: WireError.self) { _ = try ClientRequest.decode([Array("OVS2".utf8), [0x30], [1, 2, 3]][...]) }
        #expect(throws: WireError.self) { _ = try ClientRequest.decode([Array("OVS2".utf8), [0x30], Array(repeating: 0, count: 9)][...]) }
    }

    /// A peer of the previous version is told which version it needs, in a reply it can read.
    @Test func anOlderVersionIsNamedAndAnsweredInItsOwnFraming() throws {
        #expect { _ = try ClientRequest.decode([Array("OVS1".utf8), [0x26], Self.batch.bytes][...]) } throws: {
            ($0 as? WireError)?.code == .oldProtocol && "\($0)".contains("OVS2")
        }
        let frames = ClientReply.olderVersionError("speak OVS2")
        #expect(frames[0] == Array("OVS1".utf8) && frames[1] == [0x2F])
        var r = ByteReader(frames[2])
        #expect(try r.u16("code") == 5)
        #expect(try r.string("message") == "speak OVS2")
        try r.finish("OVS1 error")
    }

    @Test func rejectsWrongProtocolUnknownCommandsAndTruncation() throws {
        #expect(throws: WireError(.wrongProtocol, "expected protocol frame OVS2, got \"OVS9\" (4 bytes)")) {
            _ = try WorkerMessage.decode([Array("OVS9".utf8), [0x04]][...])
        }
        #expect { _ = try WorkerMessage.decode([Envelope.protocolFrame, [0x7F]][...]) } throws: { ($0 as? WireError)?.code == .unknownCommand }
        var frames = WorkerMessage.ready(name: "w", credit: 1).encode()
        frames[2].removeLast()
        #expect { _ = try WorkerMessage.decode(frames[...]) } throws: { ($0 as? WireError)?.code == .truncated }
        // READY's held list is optional: absent, it holds nothing; a partial one is refused.
        #expect(try WorkerMessage.decode(WorkerMessage.ready(name: "w", credit: 1).encode()[...]) == .ready(name: "w", credit: 1, held: []))
        var partial = WorkerMessage.ready(name: "w", credit: 1).encode()
        partial[2] += [1, 0]
        #expect { _ = try WorkerMessage.decode(partial[...]) } throws: { ($0 as? WireError)?.code == .truncated }
        var extra = WorkerMessage.credit(1).encode()
        extra[2].append(0)
        #expect { _ = try WorkerMessage.decode(extra[...]) } throws: { ($0 as? WireError)?.code == .trailingBytes }
        #expect { _ = try WorkerMessage.decode([Envelope.protocolFrame, [0x04], [1]][...]) } throws: { ($0 as? WireError)?.code == .trailingBytes }
    }

    @Test func refusesHugeCountsWithoutAllocating() {
        var w = ByteWriter()
        w.raw(Self.batch.bytes); w.u32(UInt32.max)
        #expect { _ = try WorkerMessage.decode([Envelope.protocolFrame, [0x02], w.bytes][...]) } throws: { ($0 as? WireError)?.code == .truncated }
    }

    /// A long seeded randomized test: mutated and random frames never crash a decoder.
    @Test func seededFuzzNeverCrashes() {
        var rng = SplitMix64(seed: 42)
        let valid = Self.workerMessages.map { $0.encode() } + Self.coordinatorMessages.map { $0.encode() }
            + Self.clientRequests.map { $0.encode() } + Self.clientReplies.map { $0.encode() }
        var decoded = 0
        for i in 0..<50_000 {
            var frames = valid[i % valid.count]
            switch rng.next() % 4 {
            case 0:  // flip bytes
                let f = Int(rng.next() % UInt64(frames.count))
                if !frames[f].isEmpty {
                    for _ in 0..<(1 + rng.next() % 4) { frames[f][Int(rng.next() % UInt64(frames[f].count))] = UInt8(truncatingIfNeeded: rng.next()) }
                }
            case 1:  // truncate
                let f = frames.count - 1
                frames[f] = Array(frames[f].prefix(Int(rng.next() % UInt64(frames[f].count + 1))))
            case 2:  // random payload
                frames = [Envelope.protocolFrame, [UInt8(truncatingIfNeeded: rng.next())], (0..<(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }]
            default:  // drop or add frames
                if rng.next() % 2 == 0 { frames.removeLast() } else { frames.append([1, 2, 3]) }
            }
            if (try? WorkerMessage.decode(frames[...])) != nil { decoded += 1 }
            if (try? CoordinatorMessage.decode(frames[...])) != nil { decoded += 1 }
            if (try? ClientRequest.decode(frames[...])) != nil { decoded += 1 }
            if (try? ClientReply.decode(frames[...])) != nil { decoded += 1 }
        }
        #expect(decoded > 0)
    }

    /// Names and reasons go to text columns: a NUL is never sent, and refused when received.
    @Test func shortStringsNeverCarryNUL() throws {
        let sent = WorkerMessage.done(batchID: Self.batch, committed: [], failed: [JobFailure(seq: 1, reason: "a\u{0}b")])
        guard case .done(_, _, let failed) = try WorkerMessage.decode(sent.encode()[...]) else { Issue.record("not done"); return }
        #expect(failed[0].reason == "a\u{FFFD}b")
        var forged = ByteWriter()
        forged.string("ok")
        var bytes = forged.bytes
        bytes[bytes.count - 1] = 0
        var reader = ByteReader(bytes)
        #expect(throws: WireError.self) { _ = try reader.string("name") }
    }
}
