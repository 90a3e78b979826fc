import Foundation
import Testing
@testable import ZeroMQ

@Suite struct RouterDealerTests {
    func receive(_ socket: ZMQSocket, timeout: Int = 2_000) throws -> [[UInt8]]? {
        var poller = ZMQPoller()
        poller.add(socket)
        guard try poller.poll(timeout: timeout)[0] else { return nil }
        return try socket.receive(dontWait: true)
    }

    @Test func multipartRoundTripOverTCPLoopback() throws {
        let context = ZMQContext()
        let router = try ZMQSocket(context, .router)
        try router.setRouterMandatory(true)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = router.lastEndpoint
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        let dealer = try ZMQSocket(context, .dealer)
        try dealer.setRoutingID(Array("dealer-1".utf8))
        try dealer.connect(endpoint)

        let big = [UInt8](repeating: 0xAB, count: 1 << 20)
        try dealer.send([Array("OVS1".utf8), [1], [], big])
        let got = try #require(try receive(router))
        #expect(got.count == 5)
        #expect(got[0] == Array("dealer-1".utf8))
        #expect(got[3] == [])
        #expect(got[4] == big)

        try router.send([got[0], Array("reply".utf8)])
        #expect(try receive(dealer) == [Array("reply".utf8)])
        dealer.close(); router.close()
    }

    @Test func routerMandatoryReportsUnknownPeers() throws {
        let context = ZMQContext()
        let router = try ZMQSocket(context, .router)
        try router.setRouterMandatory(true)
        try router.bind("tcp://127.0.0.1:*")
        #expect {
            try router.send([Array("nobody".utf8), [1]], dontWait: true)
        } throws: { ($0 as? ZMQError)?.code == .hostUnreachable }
    }

    @Test func oversizedMessagesAreDroppedByTheReceiver() throws {
        let context = ZMQContext()
        let router = try ZMQSocket(context, .router)
        try router.setMaximumMessageSize(1024)
        try router.bind("tcp://127.0.0.1:*")
        let dealer = try ZMQSocket(context, .dealer)
        try dealer.connect(router.lastEndpoint)
        try dealer.send([[UInt8](repeating: 1, count: 4096)])
        #expect(try receive(router, timeout: 300) == nil)
        // A well-behaved peer still gets through.
        let other = try ZMQSocket(context, .dealer)
        try other.connect(router.lastEndpoint)
        try other.send([[1, 2, 3]])
        #expect(try receive(router)?.last == [1, 2, 3])
    }

    @Test func bindErrorsCarryTheOperation() throws {
        let context = ZMQContext()
        let a = try ZMQSocket(context, .router)
        try a.bind("tcp://127.0.0.1:*")
        let b = try ZMQSocket(context, .router)
        #expect {
            try b.bind(a.lastEndpoint)
        } throws: { error in
            guard let e = error as? ZMQError else { return false }
            return e.code == .addressInUse && e.operation.contains("zmq_bind")
        }
    }

    @Test func wakeupInterruptsAPoll() throws {
        let wakeup = Wakeup()
        let mailbox = Mailbox<Int>(wakeup: wakeup)
        var poller = ZMQPoller()
        poller.add(fileDescriptor: wakeup.fileDescriptor)
        #expect(try poller.poll(timeout: 0) == [false])
        Thread.detachNewThread { mailbox.post(42) }
        #expect(try poller.poll(timeout: 2_000) == [true])
        wakeup.drain()
        #expect(mailbox.drain() == [42])
        #expect(try poller.poll(timeout: 0) == [false])
    }
}
