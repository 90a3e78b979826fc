import Foundation

/// A thread that owns a socket or a connection, supervised: it runs until its owner says it
/// may stop, and if it ends (or its body returns) before that, the process goes down loudly
/// instead of living on half-dead (a coordinator that no longer answers, a worker that
/// heartbeats without scoring). systemd or Kubernetes then restarts it.
public final class OwnerThread: @unchecked Sendable {
    private let finished = DispatchSemaphore(value: 0)
    public let name: String

    /// Starts `body`. `mayEnd` says whether an end now is expected (the owner asked for it);
    /// an unexpected end calls `report` with a sentence, then exits with status 70 (EX_SOFTWARE).
    public init(_ name: String, mayEnd: @escaping @Sendable () -> Bool, report: @escaping @Sendable (String) -> Void,
                _ body: @escaping @Sendable () -> Void) {
        self.name = name
        let thread = Thread { [finished] in
            body()
            if !mayEnd() {
                report("thread \(name) ended while the process was still running; exiting so that it is restarted")
                exit(70)
            }
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Waits until the thread has ended by itself, at most `timeout` seconds; false if it has not.
    @discardableResult
    public func join(timeout: Double) -> Bool {
        finished.wait(timeout: .now() + timeout) == .success
    }
}

/// How long an owner thread waits for work before it notes that it is idle and waits again.
/// OVERSIGHT_FAULT_IDLE_SECONDS shortens it for the test suite, which then sees the threads
/// outlive many idle periods (they once ended after their first idle hour).
public enum IdlePeriod {
    public static let injected = ProcessInfo.processInfo.environment["OVERSIGHT_FAULT_IDLE_SECONDS"].flatMap(Double.init)
    public static var seconds: Double { injected ?? 3600 }
}
