import ArgumentParser
import Assessment
import Coordinator
import Foundation
import Logging
import ZeroMQ

/// CURVE for a worker or a client: its own secret key file and the coordinator's public one.
/// Without them, plain TCP is allowed to loopback endpoints only, unless --insecure.
struct PeerSecurityOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "This program's secret key file (NAME.key_secret from `oversight keys generate`); default: $OVERSIGHT_KEY.",
        valueName: "file"))
    var key: String?
    @Option(help: ArgumentHelp(
        "The coordinator's public key file (its NAME.key); default: $OVERSIGHT_COORDINATOR_KEY.",
        valueName: "file"))
    var coordinatorKey: String?
    @Flag(help: "Allow plain, unauthenticated TCP to a coordinator that is not on this machine (anyone on the path can read and forge the traffic).")
    var insecure = false

    private var keyPath: String? { key ?? ProcessInfo.processInfo.environment["OVERSIGHT_KEY"].flatMap { $0.isEmpty ? nil : $0 } }
    private var coordinatorKeyPath: String? {
        coordinatorKey ?? ProcessInfo.processInfo.environment["OVERSIGHT_COORDINATOR_KEY"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The CURVE settings for connecting to `endpoints` (comma-separated), or nil for plain TCP.
    func curve(for endpoints: String) throws -> CurveClient? {
        switch (keyPath, coordinatorKeyPath) {
        case (let key?, let server?):
            let own = try CertificateFile.read(key, secret: true)
            let coordinator = try CertificateFile.read(server)
            return CurveClient(keys: try CurveKeyPair(secretKey: own.curveSecretKey!), serverKey: coordinator.curvePublicKey!)
        case (nil, nil):
            let remote = endpoints.split(separator: ",").map(String.init).filter { !Endpoint.isLoopback($0) }
            if !remote.isEmpty && !insecure {
                throw CommandFailure("""
                    \(remote.joined(separator: ", ")) is not on this machine and no keys were given: the traffic would \
                    be readable and forgeable on the network. Give --key (this program's .key_secret) and \
                    --coordinator-key (the coordinator's .key), or --insecure to accept that.
                    """)
            }
            return nil
        case (nil, _):
            throw CommandFailure("--coordinator-key needs --key (this program's own .key_secret file) too")
        case (_, nil):
            throw CommandFailure("--key needs --coordinator-key (the coordinator's public .key file) too")
        }
    }
}

/// CURVE for the coordinator: its secret key file and the allowlist directories.
struct CoordinatorSecurityOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The coordinator's secret key file (NAME.key_secret from `oversight keys generate`): CURVE on both sockets, and the Ed25519 key that signs batch seals.",
        valueName: "file"))
    var key: String?
    @Option(help: ArgumentHelp("Directory of worker public keys (*.key) allowed to connect. Reloaded on SIGHUP.", valueName: "dir"))
    var workerKeys: String?
    @Option(help: ArgumentHelp("Directory of client public keys (*.key, each naming its organisation) allowed to connect. Reloaded on SIGHUP.", valueName: "dir"))
    var clientKeys: String?
    @Flag(help: "Allow plain, unauthenticated TCP on endpoints that are not loopback (anyone who can reach the port can submit, take jobs or read them).")
    var insecure = false

    struct Settings {
        var curve: CurveServer?
        var sealKey: SealKey
    }

    func settings(endpoints: [String], logger: Logger) throws -> Settings {
        guard let key else {
            if workerKeys != nil || clientKeys != nil {
                throw CommandFailure("--worker-keys and --client-keys need --key (the coordinator's .key_secret file)")
            }
            let remote = endpoints.filter { !Endpoint.isLoopback($0) }
            if !remote.isEmpty && !insecure {
                throw CommandFailure("""
                    \(remote.joined(separator: ", ")) is reachable from other machines and no keys were given: anyone \
                    who can reach it could submit batches or take jobs. Give --key, --worker-keys and --client-keys \
                    (see `oversight keys generate --help`), bind to 127.0.0.1, or pass --insecure to accept that.
                    """)
            }
            logger.warning("batch seals are signed with a key made for this run only; give --key to sign them with a key you keep")
            return Settings(curve: nil, sealKey: SealKey())
        }
        guard let workerKeys, let clientKeys else {
            throw CommandFailure("--key needs --worker-keys DIR and --client-keys DIR: the public keys allowed to connect")
        }
        let certificate = try CertificateFile.read(key, secret: true)
        guard let seed = certificate["signing", "ed25519-secret-key"].flatMap(Z85.decode), let sealKey = SealKey(seed: seed) else {
            throw CommandFailure("\(key): no `signing` / `ed25519-secret-key`; make the coordinator's key with `oversight keys generate`")
        }
        let authenticator = try Authenticator(workerDirectory: workerKeys, clientDirectory: clientKeys, logger: logger)
        let keys = try CurveKeyPair(secretKey: certificate.curveSecretKey!)
        return Settings(curve: CurveServer(keys: keys, authenticator: authenticator), sealKey: sealKey)
    }
}

/// The coordinator's client endpoint, how long to wait, and how to secure the connection.
struct CoordinatorConnectionOptions: ParsableArguments {
    @Option(help: "The coordinator's client endpoint; several, comma-separated, for a hot standby.") var coordinator = "tcp://127.0.0.1:5556"
    @Option(help: "Seconds to wait for each answer from the coordinator.") var timeout = 30
    @OptionGroup var security: PeerSecurityOptions

    func validate() throws {
        guard timeout >= 1 else { throw ValidationError("--timeout must be at least 1 second") }
        do { _ = try Endpoint.normalised(coordinator, option: "--coordinator") } catch { throw ValidationError(error.description) }
    }

    func client() throws -> CoordinatorClient {
        let endpoint = try Endpoint.normalised(coordinator, option: "--coordinator")
        return try CoordinatorClient(endpoint: endpoint, curve: try security.curve(for: endpoint), timeoutSeconds: timeout)
    }
}
