import ArgumentParser
import Assessment
import Coordinator
import Foundation
import ZeroMQ

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Make and inspect the keys that secure the coordinator, workers and clients.",
        subcommands: [GenerateKeys.self, ShowKey.self])
}

struct GenerateKeys: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a new key pair: NAME.key (public) and NAME.key_secret (secret, mode 0600).",
        discussion: """
            Each file is a certificate in czmq's format: a CurveZMQ (Curve25519) key pair for the connection, and an Ed25519 key pair with which a coordinator signs batch seals.

            Hand out only NAME.key. The coordinator takes its own NAME.key_secret with --key; copy each worker's NAME.key into the coordinator's --worker-keys directory and each client's into --client-keys (a client key names its --organisation, which owns the batches it submits); workers and clients take the coordinator's NAME.key with --coordinator-key and their own NAME.key_secret with --key.

            Example:
              oversight keys generate coordinator --directory /etc/oversight
              oversight keys generate analyst-anna --organisation amnesty-tech
              cp analyst-anna.key /etc/oversight/clients/
            """)

    @Argument(help: "Name of the key (letters, digits, '.', '_', '-'); also the file names.") var name: String
    @Option(help: "Directory to write the two files into.") var directory = "."
    @Option(help: "The organisation a client key belongs to (lower-case letters, digits, '.', '_', '-').") var organisation: String?

    func validate() throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !name.isEmpty, name.count <= 64, name.allSatisfy(allowed.contains), !name.hasPrefix(".") else {
            throw ValidationError("key name \"\(name)\" may hold only letters, digits, '.', '_' and '-' (at most 64, not starting with '.')")
        }
        if let organisation, !Organisation.isValid(organisation) {
            throw ValidationError("--organisation \"\(organisation)\" may hold only lower-case letters, digits, '.', '_' and '-' (1–63, starting with a letter or digit)")
        }
    }

    func run() throws {
        try runOrExit {
            guard Curve.isAvailable else { throw CommandFailure("this libzmq was built without CURVE (libsodium); install a libzmq with CURVE support") }
            let curve = try CurveKeyPair.generate()
            let signing = SealKey()
            var certificate = Certificate()
            certificate["metadata", "name"] = name
            if let organisation { certificate["metadata", "organisation"] = organisation }
            certificate["metadata", "created"] = ISO8601DateFormatter().string(from: Date())
            certificate["curve", "public-key"] = Z85.encode(curve.publicKey)
            certificate["curve", "secret-key"] = Z85.encode(curve.secretKey)
            certificate["signing", "ed25519-public-key"] = Z85.encode(signing.publicKey)
            certificate["signing", "ed25519-secret-key"] = Z85.encode(signing.seed)

            let base = (directory as NSString).appendingPathComponent(name)
            try CertificateFile.create(base + ".key_secret", text: certificate.text(header: [
                "Oversight secret key \(name): DO NOT hand out this file or widen its permissions.",
                "Its public half is \(name).key.",
            ]), mode: 0o600)
            do {
                try CertificateFile.create(base + ".key", text: certificate.publicPart.text(header: [
                    "Oversight public key \(name): safe to hand out (allowlists, --coordinator-key).",
                ]), mode: 0o644)
            } catch {
                unlink(base + ".key_secret")
                throw error
            }
            print("\(base).key          public: give it to the other side")
            print("\(base).key_secret   secret: mode 0600, keep it here")
            print("fingerprint \(keyFingerprint(curve.publicKey))")
        }
    }
}

struct ShowKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a key file's name, organisation and fingerprints (never a secret).",
        discussion: """
            The fingerprint is what the coordinator logs when it refuses a key.

            Example:
              oversight keys show /etc/oversight/clients/analyst-anna.key
            """)

    @Argument(help: "A .key or .key_secret file.") var file: String

    func run() throws {
        try runOrExit {
            let certificate = try CertificateFile.read(file, secret: file.hasSuffix("_secret"))
            print("name          \(certificate["metadata", "name"] ?? "-")")
            print("organisation  \(certificate["metadata", "organisation"] ?? "-")")
            print("curve         \(keyFingerprint(certificate.curvePublicKey!))")
            if let signing = certificate["signing", "ed25519-public-key"].flatMap(Z85.decode) {
                print("signing       \(keyFingerprint(signing))")
            }
            print("secret        \(certificate.curveSecretKey == nil ? "no (public certificate)" : "yes")")
        }
    }
}
