import Foundation
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

    /// A chooser takes any waiting message; the rest keep their order, and one message alone
    /// is taken without asking.
    @Test func aChooserTakesAnyWaitingMessageAndTheRestKeepTheirOrder() {
        let mailbox = Mailbox<Int>()
        var asked: [[Int]] = []
        mailbox.post(1)
        guard case .message(1) = mailbox.take(until: 0, choosing: { asked.append($0); return 0 }) else { Issue.record("expected 1"); return }
        #expect(asked.isEmpty, "one waiting message needs no choice")
        for i in 2...6 { mailbox.post(i) }
        guard case .message(5) = mailbox.take(until: 0, choosing: { asked.append($0); return $0.firstIndex(of: 5)! }) else {
            Issue.record("expected the chosen 5"); return
        }
        #expect(asked == [[2, 3, 4, 5, 6]])
        guard case .message(2) = mailbox.take(until: 0, choosing: { _ in 99 }) else { Issue.record("a place out of range takes the oldest"); return }
        #expect(mailbox.drain() == [3, 4, 6])
        // Across compactions, as the worker's queues run for hours.
        let long = Mailbox<Int>()
        var taken: [Int] = []
        for i in 0..<3_000 {
            long.post(i)
            if i % 3 == 2, case .message(let n) = long.take(until: 0, choosing: { $0.count - 1 }) { taken.append(n) }
        }
        #expect(taken == stride(from: 2, to: 3_000, by: 3).map { $0 })
        #expect(long.drain() == (0..<3_000).filter { $0 % 3 != 2 })
    }

    /// Waiting says what happened: a message, a time-out, or a mailbox closed for good. A
    /// thread that took a time-out for the end once stopped after its first idle hour.
    @Test func aTimeOutIsNotTheEnd() {
        let mailbox = Mailbox<Int>()
        guard case .timedOut = mailbox.take(until: 0.01) else { Issue.record("expected a time-out"); return }
        mailbox.post(7)
        guard case .message(7) = mailbox.take(until: 1) else { Issue.record("expected the message"); return }
        mailbox.post(8)
        mailbox.close()
        guard case .message(8) = mailbox.take(until: 1) else { Issue.record("what was queued before close is still taken"); return }
        guard case .closed = mailbox.take(until: 1) else { Issue.record("expected closed"); return }
        final class Seen: @unchecked Sendable { var idles = 0; var taken: [Int] = [] }
        let seen = Seen()
        let other = Mailbox<Int>()
        let ended = DispatchSemaphore(value: 0)
        let thread = Thread {
            other.forEach(idleSeconds: 0.01, idle: {
                seen.idles += 1
                if seen.idles == 5 { other.post(1) }
                if seen.idles == 10 { other.close() }
            }) { seen.taken.append($0) }
            ended.signal()
        }
        thread.start()
        #expect(ended.wait(timeout: .now() + 60) == .success, "the loop ends once closed")
        let taken = seen.taken
        #expect(seen.idles == 10)
        #expect(taken == [1], "the loop outlived ten idle periods and took the message between them")
    }
}

