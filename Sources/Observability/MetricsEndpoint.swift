public import Prometheus
import Metrics
import Hummingbird
public import Logging
import Foundation

/// What a service says about itself on its metrics listener.
public struct ServiceHealth: Sendable {
    /// `/healthz`: the process and the threads that own its sockets and connections run.
    public var alive: @Sendable () -> Bool
    /// `/readyz`: it can do its work (nil), or why not.
    public var notReady: @Sendable () -> String?
    /// Called before `/metrics` is rendered, off the HTTP server's event loop, to bring the
    /// gauges up to date (a coordinator asks its loop for a snapshot).
    public var refresh: @Sendable () -> Void
    public init(alive: @escaping @Sendable () -> Bool, notReady: @escaping @Sendable () -> String?, refresh: @escaping @Sendable () -> Void = {}) {
        self.alive = alive
        self.notReady = notReady
        self.refresh = refresh
    }
}

/// The HTTP listener of `--metrics HOST:PORT`: `/metrics` (Prometheus text format 0.0.4),
/// `/healthz` and `/readyz` (200, or 503 with the reason). It runs beside the service, on
/// SwiftNIO's threads, and installs no signal handler: the service owns SIGTERM.
public final class MetricsEndpoint: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let host: String
    private let port: Int
    private let health: ServiceHealth

    /// The registry every metric of this process goes to, through swift-metrics as well
    /// (`MetricsSystem` is bootstrapped with it once, the first time this is read).
    public static let shared: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        // Durations are in seconds: from a millisecond to a minute.
        let buckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                   .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
                                   .seconds(5), .seconds(10), .seconds(30), .seconds(60)]
        MetricsSystem.bootstrap(DocumentedMetricsFactory(registry: registry, help: MetricHelp.texts, durationBuckets: buckets,
                                                         valueBuckets: [1, 10, 100, 1_000, 10_000, 100_000]))
        return registry
    }()

    public init(host: String, port: Int, version: String, health: ServiceHealth) {
        registry = Self.shared
        self.host = host
        self.port = port
        self.health = health
        registry.makeGauge(name: "oversight_build_info", labels: [("version", version)],
                           help: "Always 1: the version of this oversight binary, as a label.").set(to: Double(1))
    }

    /// Listens; returns the address once it does (or throws why it cannot).
    public func start(logger: Logger) throws -> String {
        let router = Router()
        let health = self.health, registry = self.registry
        router.get("/metrics") { _, _ -> Response in
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async { health.refresh(); continuation.resume() }
            }
            let body = registry.emitToBuffer()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: .init(bytes: body)))
        }
        router.get("/healthz") { _, _ -> Response in
            health.alive() ? Self.text(.ok, "ok\n") : Self.text(.serviceUnavailable, "not alive: a thread that owns a socket or a connection stopped\n")
        }
        router.get("/readyz") { _, _ -> Response in
            if let reason = health.notReady() { return Self.text(.serviceUnavailable, "not ready: \(reason)\n") }
            return Self.text(.ok, "ready\n")
        }
        let listening = DispatchSemaphore(value: 0)
        let address = Box()
        let app = Application(router: router, server: .http1(),
                              configuration: .init(address: .hostname(host, port: port), serverName: "oversight-metrics"),
                              onServerRunning: { channel in
                                  address.set("http://\(self.host.contains(":") ? "[\(self.host)]" : self.host):\(channel.localAddress?.port ?? self.port)")
                                  listening.signal()
                              },
                              logger: logger)
        Task {
            do { try await app.runService(gracefulShutdownSignals: []) } catch { address.fail("\(error)") }
            listening.signal()
        }
        listening.wait()
        guard let bound = address.value else { throw MetricsEndpointError(description: "cannot listen for metrics on \(host):\(port): \(address.failure ?? "unknown error")") }
        return bound
    }

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: .init(string: body)))
    }

    /// `HOST:PORT` (`[::1]:9464` for IPv6); nil if it is not one.
    public static func parse(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    private final class Box: @unchecked Sendable {
        private let lock = NSLock()
        private var bound: String?
        private var error: String?
        func set(_ v: String) { lock.withLock { bound = v } }
        func fail(_ e: String) { lock.withLock { error = e } }
        var value: String? { lock.withLock { bound } }
        var failure: String? { lock.withLock { error } }
    }
}

public struct MetricsEndpointError: Error, CustomStringConvertible { public let description: String }
