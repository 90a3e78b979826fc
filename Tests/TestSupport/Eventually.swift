import Foundation

/// A condition a test waited for that did not come in time, with the last value it saw.
public struct NotInTime: Error, CustomStringConvertible {
    public let description: String
}

/// Waits, polling, until `observe` gives a value that `done` accepts; returns that value.
/// Throws `NotInTime` after `seconds`, naming what was awaited and the last value observed.
/// Tests wait for what they assert this way, never for a fixed time.
@discardableResult
public func eventually<T>(_ what: String, within seconds: Double = 90, poll: Double = 0.05,
                          _ observe: () throws -> T, until done: (T) -> Bool) throws -> T {
    let deadline = Date().addingTimeInterval(seconds)
    var last: T?
    var lastError: (any Error)?
    while true {
        do {
            let value = try observe()
            if done(value) { return value }
            last = value
        } catch {
            lastError = error
        }
        if Date() > deadline {
            let seen = last.map { "\($0)" } ?? lastError.map { "error: \($0)" } ?? "nothing"
            throw NotInTime(description: "not in \(Int(seconds)) s: \(what); last observed: \(seen)")
        }
        Thread.sleep(forTimeInterval: poll)
    }
}

/// Waits until `condition` holds (see `eventually`).
public func waitUntil(_ what: String, within seconds: Double = 90, poll: Double = 0.05, _ condition: () throws -> Bool) throws {
    try eventually(what, within: seconds, poll: poll, condition, until: { $0 })
}
