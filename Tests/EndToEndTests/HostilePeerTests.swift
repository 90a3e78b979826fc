import Identifiers
import Foundation
import Testing
import LibPQ
import TestSupport
import Wire
import ZeroMQ

/// A DEALER that speaks the protocol by hand, as an outsider's client or a hostile worker would.
final class RawPeer {
    let context = ZMQContext()
    let socket: ZMQSocket

    init(_ endpoint: String) throws {
        socket = try ZMQSocket(context, .dealer)
        try socket.connect(endpoint)
    }

    func send(_ frames: [[UInt8]]) throws { try socket.send(frames) }

    /// The next message, or a failure after `seconds`.
    func receive(within seconds: Double = 30) throws -> [[UInt8]] {
        try eventually("a message from the coordinator", within: seconds, { try socket.receive(dontWait: true) }, until: { $0 != nil })!
    }

    func reply(within seconds: Double = 30) throws -> ClientReply { try ClientReply.decode(receive(within: seconds)[...]) }

    deinit {
        socket.close()
        context.shutdown()
    }
}

@Suite(.serialized) struct HostilePeerTests {
    /// Garbage, wrong versions, unknown commands and oversized messages on both coordinator sockets:
    /// each dropped, and the coordinator keeps serving everyone else.
    @Test func theCoordinatorSurvivesHostilePeers() throws {
        let system = try RunningSystem(workers: 1, label: "hostile")
        defer { _ = system.stop() }
        var peers: [RawPeer] = []
        for endpoint in [system.workerEndpoint, system.clientEndpoint] {
            let peer = try RawPeer(endpoint)
            peers.append(peer)
            try peer.send([Array("garbage".utf8)])
            try peer.send([Array("OVS9".utf8), [0x01], [1, 2, 3]])                  // unknown protocol
            try peer.send([Envelope.protocolFrame, [0x7E]])                           // unknown command
            try peer.send([Envelope.protocolFrame, [0x02], [0xFF, 0xFF]])             // truncated DONE
            for _ in 0..<2_000 { try peer.send([Envelope.protocolFrame, [0x26], [UInt8](repeating: 7, count: 3)]) }  // flood
        }
        // A bad client request gets an answer that says so.
        guard case .error(let code, _, _, _) = try peers[1].reply() else { Issue.record("no ERROR for garbage"); return }
        #expect(code == ClientReply.ErrorCode.badRequest.rawValue)

        // A client of the previous version is told, in its own framing, which version it needs.
        let old = try RawPeer(system.clientEndpoint)
        var request = ClientRequest.status(batchID: BatchID()).encode()
        request[0] = Array("OVS1".utf8)
        try old.send(request)
        let answer = try eventually("an OVS1 ERROR", { try old.receive() }, until: { $0.first == Array("OVS1".utf8) })
        #expect(answer[1] == [0x2F])
        #expect(String(decoding: answer[2].dropFirst(4), as: UTF8.self).contains("OVS2"))

        // Over 64 MiB: libzmq drops the connection itself; the coordinator counts the disconnect.
        let big = try RawPeer(system.clientEndpoint)
        try big.send([Envelope.protocolFrame, [0x22], [UInt8](repeating: 0xAB, count: 70 << 20)])

        let counters = try RawPeer(system.clientEndpoint)
        let counted = try eventually("counted violations and a dropped connection", {
            try counters.send(ClientRequest.counters.encode())
            guard case .counters(let list) = try counters.reply() else { return [String: UInt64]() }
            return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0.value) })
        }, until: { ($0["client_disconnects"] ?? 0) >= 1 && ($0["bad_client_messages"] ?? 0) >= 2_000 })
        #expect((counted["bad_worker_messages"] ?? 0) >= 2_000)
        #expect((counted["old_protocol_client_messages"] ?? 0) == 1)

        // Everyone else is still served.
        let file = system.directory + "/after.jsonl"
        try #"{"id":"after-the-storm","system":{"type":"alpr"}}"#.appending("\n").write(toFile: file, atomically: true, encoding: .utf8)
        let result = try system.submit(file)
        #expect(result.status == 0, "\(result.stderr)\n\(system.logs)")
        #expect(result.stderr.contains("completed: 1 assessed"))
        #expect(system.coordinator.process.isRunning)
        #expect(system.coordinator.log.contains("dropped a bad message from a worker"))
        #expect(system.coordinator.log.contains("dropped a bad message from a client"))
    }

    /// One client floods STATUS of batches the coordinator must look up in the database, and
    /// never reads a reply; another submits meanwhile. The flood is bounded (64 waiting, then
    /// refused in order; 1,024 unanswered, then dropped), so the submit's chunks do not queue
    /// behind tens of thousands of lookups; the flood is counted, and logged a bounded number
    /// of times.
    @Test func aFloodingClientDoesNotHoldUpAnother() throws {
        let system = try RunningSystem(workers: 1, label: "flood")
        defer { _ = system.stop() }
        let flood = try RawPeer(system.clientEndpoint)
        let unknown = ClientRequest.status(batchID: BatchID()).encode()
        for _ in 0..<30_000 { try flood.send(unknown) }
        let file = system.directory + "/meanwhile.jsonl"
        try writeRecords(2_000, seed: 43, to: file)
        let started = Date()
        let result = try system.submit(file)
        #expect(result.status == 0, "\(result.stderr)\n\(system.logs)")
        #expect(result.stderr.contains("completed: 2000 assessed"), "\(result.stderr)")
        print("a 2,000-record submit beside a 30,000-request flood: \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        let counters = try RawPeer(system.clientEndpoint)
        let counted = try eventually("the flood counted", {
            try counters.send(ClientRequest.counters.encode())
            guard case .counters(let list) = try counters.reply() else { return [String: UInt64]() }
            return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0.value) })
        }, until: { ($0["client_requests_dropped"] ?? 0) + ($0["client_requests_refused_busy"] ?? 0) >= 20_000 })
        #expect((counted["client_requests_dropped"] ?? 0) > 0, "\(counted)")
        // Rate-limited: the first ten and then each power of two, not one line per request.
        let lines = system.coordinator.log.split(separator: "\n").filter { $0.contains("dropped a request") || $0.contains("refused a request") }
        #expect(lines.count < 60, "\(lines.count) log lines about one flooding client")
    }

    /// A worker that claims jobs it was never leased, and a peer that never said READY, count for
    /// nothing; a job it was leased and claimed without writing is found missing before the
    /// seal and sent again. The batch completes with every assessment, and its seal verifies.
    @Test func aDoneNeverCountsOnThePeersWord() throws {
        let system = try FaultySystem(label: "liar", workers: 1)
        defer { system.stopAll() }
        let file = system.directory + "/batch.jsonl"
        try writeRecords(300, seed: 11, to: file)
        let liar = try RawPeer(system.workerEndpoint)
        try liar.send(WorkerMessage.ready(name: "liar", credit: 1).encode())
        let submit = try system.submitInBackground(file)
        defer { submit.stop() }
        // The liar heartbeats while it waits, as a live worker does: silent for the coordinator's
        // liveness (600 ms here) it would be dropped before the batch's first jobs exist (on a
        // loaded machine, submit takes longer than that to store its first chunk).
        let bundle = try eventually("a job for the liar", {
            try liar.send(WorkerMessage.heartbeat.encode())
            return try liar.socket.receive(dontWait: true).map { try CoordinatorMessage.decode($0[...]) }
        }, until: { if case .jobs? = $0 { return true } else { return false } })
        guard case .jobs(let jobs)? = bundle else { return }
        #expect(jobs.jobs.map(\.seq) == [1])
        // Claims its one job and 299 it never held; a stranger claims three more.
        try liar.send(WorkerMessage.done(batchID: jobs.batchID, committed: Array(1...300), failed: [JobFailure(seq: 5, reason: "x")]).encode())
        let stranger = try RawPeer(system.workerEndpoint)
        try stranger.send(WorkerMessage.done(batchID: jobs.batchID, committed: [2, 3, 4], failed: []).encode())
        try waitUntil("the coordinator ignored the claims") { system.coordinator.log.contains("a DONE named jobs that have no assessment") }
        try system.startWorkers()
        try waitUntil("submit finished") { !submit.process.isRunning }
        #expect(submit.process.terminationStatus == 0, "\(submit.log)\n\(system.logs)")
        let batch = jobs.batchID.description
        try system.expectExactlyOnce(batch: batch, accepted: 300, "\(system.logs)")
        let verify = try OversightBinary.runSplit(["audit", "verify", batch, "--database", system.conninfo])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("300 accepted = 300 assessed + 0 dead-lettered"), "\(verify.stdout)")
        let client = try RawPeer(system.clientEndpoint)
        try client.send(ClientRequest.counters.encode())
        guard case .counters(let list) = try client.reply() else { Issue.record("no COUNTERS"); return }
        let counters = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0.value) })
        #expect((counters["done_without_assessment"] ?? 0) >= 299, "\(counters)")
        #expect((counters["failure_for_job_not_leased"] ?? 0) == 1, "\(counters)")
        #expect((counters["batches_found_incomplete_at_seal"] ?? 0) >= 1, "\(counters)")
    }

    /// CHUNK after CLOSE, and after CANCEL, is refused with ERROR 6 naming batch and chunk, and
    /// stores nothing; replies come in the order of requests, STATUS included; CLOSE's count
    /// must be the stored one; a completed batch refuses cancel and retry.
    @Test func intakeEndsWhereTheProtocolSays() throws {
        let system = try RunningSystem(workers: 1, label: "closed")
        defer { _ = system.stop() }
        let client = try RawPeer(system.clientEndpoint)
        let batch = BatchID()
        let record = { (n: Int64) in SubmittedRecord(line: n, body: .json(Array(#"{"id":"r\#(n)","system":{"type":"alpr"}}"#.utf8))) }
        try client.send(ClientRequest.open(batchID: batch, name: "b", packs: [.builtIn("privacy-baseline")], source: "raw").encode())
        for n in 1...3 { try client.send(ClientRequest.chunk(batchID: batch, number: UInt64(n), records: [record(Int64(n))]).encode()) }
        try client.send(ClientRequest.heartbeat(nonce: 42).encode())
        try client.send(ClientRequest.status(batchID: batch).encode())
        try client.send(ClientRequest.close(batchID: batch, chunks: 2).encode())
        var all: [ClientReply] = []
        for _ in 0..<7 { all.append(try client.reply()) }
        // HEARTBEAT is not a request: answered once, at once, ahead of the STATUS behind it,
        // and the requests' replies keep their order around it.
        let beats = all.indices.filter { if case .heartbeat = all[$0] { true } else { false } }
        #expect(beats.count == 1, "\(all)")
        if let beat = beats.first {
            guard case .heartbeat(42, let instance) = all[beat] else { Issue.record("\(all[beat])"); return }
            #expect(instance != 0)
            #expect(!all[..<beat].contains { if case .status = $0 { true } else { false } }, "the heartbeat waited for STATUS: \(all)")
        }
        let replies = all.filter { if case .heartbeat = $0 { false } else { true } }
        guard case .opened = replies[0] else { Issue.record("\(replies)"); return }
        #expect(replies[1...3].map { if case .acknowledged(_, let n, _, _) = $0 { n } else { 0 } } == [UInt64(1), 2, 3], "\(replies)")
        guard case .status(let progress) = replies[4] else { Issue.record("STATUS out of order: \(replies)"); return }
        #expect(progress.accepted == 3)
        guard case .error(3, batch, nil, _) = replies[5] else { Issue.record("CLOSE with a wrong count: \(replies[5])"); return }
        try client.send(ClientRequest.close(batchID: batch, chunks: 3).encode())
        guard case .closed = try client.reply() else { Issue.record("no CLOSED"); return }
        try client.send(ClientRequest.chunk(batchID: batch, number: 4, records: [record(4)]).encode())
        guard case .error(6, batch, 4, let message) = try client.reply() else { Issue.record("CHUNK after CLOSE acknowledged"); return }
        #expect(message.contains("closed"))

        let cancelled = BatchID()
        try client.send(ClientRequest.open(batchID: cancelled, name: "c", packs: [.builtIn("privacy-baseline")], source: "raw").encode())
        _ = try client.reply()
        try client.send(ClientRequest.cancel(batchID: cancelled).encode())
        _ = try client.reply()
        try client.send(ClientRequest.chunk(batchID: cancelled, number: 1, records: [record(1)]).encode())
        guard case .error(6, cancelled, 1, _) = try client.reply() else { Issue.record("CHUNK after CANCEL acknowledged"); return }

        let db = try PGConnection(system.conninfo)
        #expect(try db.query("SELECT count(*) FROM oversight.jobs WHERE batch_id = \(batch.description)::uuid").int(0, 0) == 3)
        #expect(try db.query("SELECT count(*) FROM oversight.jobs WHERE batch_id = \(cancelled.description)::uuid").int(0, 0) == 0)

        // Completed: final.
        try waitUntil("the batch completes") {
            try db.query("SELECT state FROM oversight.batch_progress WHERE batch_id = \(batch.description)::uuid").string(0, 0) == "completed"
        }
        for request in [ClientRequest.cancel(batchID: batch), .retry(batchID: batch)] {
            try client.send(request.encode())
            guard case .error(5, batch, nil, let why) = try client.reply() else { Issue.record("\(request) of a completed batch accepted"); continue }
            #expect(why.contains("final"), "\(why)")
        }
        #expect(try db.query("SELECT state FROM oversight.batch_progress WHERE batch_id = \(batch.description)::uuid").string(0, 0) == "completed")
    }
}
