import Foundation
import Testing
import TestSupport
import Wire
import ZeroMQ

/// Garbage, wrong versions, unknown commands and oversized messages on both coordinator sockets:
/// each dropped, and the coordinator keeps serving everyone else.
@Suite struct HostilePeerTests {
    @Test func theCoordinatorSurvivesHostilePeers() throws {
        let system = try RunningSystem(workers: 1, label: "hostile")
        defer { _ = system.stop() }
        let context = ZMQContext()
        var sockets: [ZMQSocket] = []
        for endpoint in [system.workerEndpoint, system.clientEndpoint] {
            let socket = try ZMQSocket(context, .dealer)
            try socket.connect(endpoint)
            sockets.append(socket)
            try socket.send([Array("garbage".utf8)])
            try socket.send([Array("OVS9".utf8), [0x01], [1, 2, 3]])                  // wrong protocol version
            try socket.send([Envelope.protocolFrame, [0x7E]])                           // unknown command
            try socket.send([Envelope.protocolFrame, [0x02], [0xFF, 0xFF]])             // truncated DONE
            try socket.send([Envelope.protocolFrame, [0x22], [UInt8](repeating: 0xAB, count: 70 << 20)])  // over 64 MiB
            for _ in 0..<2_000 { try socket.send([Envelope.protocolFrame, [0x26], [UInt8](repeating: 7, count: 3)]) }  // flood
        }
        // A bad client request gets an answer that says so.
        var poller = ZMQPoller()
        poller.add(sockets[1])
        #expect(try poller.poll(timeout: 5_000)[0])
        if let reply = try sockets[1].receive(dontWait: true) {
            if case .error(let code, _) = try ClientReply.decode(reply[...]) { #expect(code == ClientReply.ErrorCode.badRequest.rawValue) }
        }
        sockets.forEach { $0.close() }

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
}
