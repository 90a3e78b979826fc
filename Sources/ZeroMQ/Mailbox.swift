import Foundation

/// How threads reach the owner of a socket or connection: a locked queue of Swift values.
/// A poll-loop owner passes a `Wakeup` and polls its file descriptor; a blocking owner waits
/// in `take`. Nothing else is shared.
public final class Mailbox<Message: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    /// Taken messages are cleared at once and their slots compacted away, so a queue that
    /// never empties under load holds only what waits (it once held everything ever posted).
    private var queue: [Message?] = []
    private var head = 0
    private var closed = false
    private let wakeup: Wakeup?

    public init(wakeup: Wakeup? = nil) { self.wakeup = wakeup }

    public func post(_ message: Message) {
        condition.lock()
        queue.append(message)
        condition.signal()
        condition.unlock()
        wakeup?.signal()
    }

    /// Everything queued now, without waiting.
    public func drain() -> [Message] {
        condition.lock()
        defer { condition.unlock() }
        let messages = queue[head...].map { $0! }
        queue.removeAll(keepingCapacity: true)
        head = 0
        return messages
    }

    /// What waiting for a message gave: one, nothing yet, or nothing ever again.
    public enum Taken {
        case message(Message)
        case timedOut
        case closed
    }

    /// The next message, waiting up to `timeout` seconds; says whether it timed out or the
    /// mailbox is closed (and empty), which are different things to a thread that owns a loop.
    public func take(until timeout: Double) -> Taken { take(until: timeout, choosing: nil) }

    /// The message `choose` picks from those waiting (given oldest first, it returns the place
    /// of the one to take), waiting up to `timeout` seconds for there to be one. The others
    /// keep their order.
    public func take(until timeout: Double, choosing choose: (([Message]) -> Int)?) -> Taken {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while head == queue.count {
            if closed { return .closed }
            if !condition.wait(until: deadline) {
                if head < queue.count { break }
                return closed ? .closed : .timedOut
            }
        }
        if let choose, queue.count - head > 1 {
            let place = choose(queue[head...].map { $0! })
            if place > 0 && head + place < queue.count {
                return .message(queue.remove(at: head + place)!)
            }
        }
        let message = queue[head].take()!
        head += 1
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= queue.count {
            queue.removeFirst(head)
            head = 0
        }
        return .message(message)
    }

    /// Every message until the mailbox is closed and empty, waiting as long as it takes:
    /// an idle period never ends the loop. `idle` runs each time `idleSeconds` pass quietly.
    /// `choosing` picks each message among those waiting, as in `take(until:choosing:)`.
    public func forEach(idleSeconds: Double = 3600, idle: () -> Void = {}, choosing: (([Message]) -> Int)? = nil,
                        _ body: (Message) -> Void) {
        while true {
            switch take(until: idleSeconds, choosing: choosing) {
            case .message(let message): body(message)
            case .timedOut: idle()
            case .closed: return
            }
        }
    }

    /// The next message; waits up to `timeout` seconds. Nil on timeout or once closed and empty.
    public func take(timeout: Double) -> Message? {
        if case .message(let message) = take(until: timeout) { return message }
        return nil
    }

    public var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.count - head
    }

    public var isClosed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed
    }

    /// Wakes every waiter; `take` returns nil once the queue is empty.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
        wakeup?.signal()
    }
}
