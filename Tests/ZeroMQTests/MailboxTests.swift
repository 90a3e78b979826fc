import Testing
@testable import ZeroMQ

@Suite struct MailboxTests {
    final class Payload: Sendable {}

    /// A mailbox that never empties under load must not keep what was taken: the coordinator's
    /// store queue once held every chunk of a batch this way (found by `oversight bench`).
    @Test func takenMessagesAreReleasedWhileTheQueueNeverEmpties() {
        let mailbox = Mailbox<Payload>()
        weak var first: Payload?
        do {
            let payload = Payload()
            first = payload
            mailbox.post(payload)
        }
        for _ in 0..<5_000 {
            mailbox.post(Payload())
            _ = mailbox.take(timeout: 0)
        }
        #expect(first == nil, "the first message was taken long ago and must be gone")
        #expect(mailbox.count == 1)
        var order: [Int] = []
        let numbers = Mailbox<Int>()
        for i in 0..<3_000 { numbers.post(i); if i % 2 == 0, let n = numbers.take(timeout: 0) { order.append(n) } }
        order += numbers.drain()
        #expect(order == Array(0..<3_000), "FIFO across compactions")
    }
}
