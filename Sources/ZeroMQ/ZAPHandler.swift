import CZeroMQ
import Foundation

/// One authentication request from libzmq (ZeroMQ RFC 27, ZAP 1.0).
public struct ZAPRequest: Sendable {
    /// The server socket's `ZMQ_ZAP_DOMAIN`: which allowlist applies.
    public let domain: String
    /// The peer's IP address.
    public let address: String
    /// "NULL", "PLAIN" or "CURVE".
    public let mechanism: String
    public let credentials: [[UInt8]]

    /// The client's long-term public key, for CURVE.
    public var curvePublicKey: [UInt8]? {
        mechanism == "CURVE" && credentials.first?.count == 32 ? credentials[0] : nil
    }
}

public enum ZAPDecision: Sendable, Equatable {
    /// Let the peer in; every message it sends carries `userID` as its "User-Id" property.
    case allow(userID: String)
    case deny(reason: String)
}

/// The ZAP handler of a context: a thread that owns a REP socket on `inproc://zeromq.zap.01`
/// and answers libzmq's authentication requests with `authorize` (czmq's zauth, as a value
/// decision). Start it before any server socket binds.
public final class ZAPHandler: @unchecked Sendable {
    public static let endpoint = "inproc://zeromq.zap.01"
    private let wakeup = Wakeup()
    private let finished = DispatchSemaphore(value: 0)
    private let stopRequested = Mailbox<Bool>()

    /// Binds the handler and starts its thread; throws if the endpoint cannot be bound.
    public init(context: ZMQContext, authorize: @escaping @Sendable (ZAPRequest) -> ZAPDecision) throws {
        let bound = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var bindError: (any Error)?
        let thread = Thread { [wakeup, finished, stopRequested] in
            defer { finished.signal() }
            let socket: ZMQSocket
            do {
                socket = try ZMQSocket(context, .rep)
                try socket.bind(Self.endpoint)
            } catch {
                bindError = error
                bound.signal()
                return
            }
            bound.signal()
            defer { socket.close() }
            var poller = ZMQPoller()
            poller.add(socket)
            poller.add(fileDescriptor: wakeup.fileDescriptor)
            while stopRequested.count == 0 {
                guard let ready = try? poller.poll(timeout: -1) else { return }
                if ready[1] { wakeup.drain() }
                guard ready[0] else { continue }
                while let frames = try? socket.receive(dontWait: true) {
                    let reply = Self.answer(frames, authorize)
                    do { try socket.send(reply) } catch { return }
                }
            }
        }
        thread.name = "oversight-zap"
        thread.start()
        bound.wait()
        if let bindError { throw bindError }
    }

    /// Stops the thread and waits for it (the socket must close before the context terminates).
    public func stop() {
        stopRequested.post(true)
        wakeup.signal()
        finished.wait()
        finished.signal()
    }

    /// The reply frames for one request; malformed requests get status 500.
    static func answer(_ frames: [[UInt8]], _ authorize: (ZAPRequest) -> ZAPDecision) -> [[UInt8]] {
        func reply(_ id: [UInt8], _ code: String, _ text: String, _ user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), id, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard frames.count >= 6, frames[0] == Array("1.0".utf8) else {
            return reply(frames.count > 1 ? frames[1] : [], "500", "malformed ZAP request")
        }
        let request = ZAPRequest(domain: String(decoding: frames[2], as: UTF8.self),
                                 address: String(decoding: frames[3], as: UTF8.self),
                                 mechanism: String(decoding: frames[5], as: UTF8.self),
                                 credentials: Array(frames.dropFirst(6)))
        switch authorize(request) {
        case .allow(let user): return reply(frames[1], "200", "OK", user)
        case .deny(let reason): return reply(frames[1], "400", reason)
        }
    }
}
