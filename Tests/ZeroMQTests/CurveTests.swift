import Foundation
import Testing
@testable import ZeroMQ

@Suite struct CurveTests {
    func receive(_ socket: ZMQSocket, timeout: Int = 2_000) throws -> (frames: [[UInt8]], userID: String?)? {
        var poller = ZMQPoller()
        poller.add(socket)
        guard try poller.poll(timeout: timeout)[0] else { return nil }
        return try socket.receiveMessage(dontWait: true)
    }

    /// ZeroMQ RFC 32's test vector, and round trips of random keys.
    @Test func z85MatchesTheSpecification() throws {
        let bytes: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        #expect(Z85.encode(bytes) == "HelloWorld")
        #expect(Z85.decode("HelloWorld") == bytes)
        let keys = try CurveKeyPair.generate()
        #expect(Z85.decode(Z85.encode(keys.secretKey)) == keys.secretKey)
        #expect(Z85.decode("Hello") != nil)
        #expect(Z85.decode("Hell") == nil, "not a multiple of 5")
        #expect(Z85.decode("Hello\"orld") == nil, "outside the alphabet")
        #expect(try CurveKeyPair(secretKey: keys.secretKey).publicKey == keys.publicKey)
    }

    @Test func certificatesRoundTripAndReadCzmqFiles() throws {
        let czmq = """
            #   ****  Generated on 2026-01-01 by czmq  ****
            #   ZeroMQ CURVE Public Certificate

            metadata
                name = "worker 7"
                organisation = "amnesty"
            curve
                public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
            """
        let parsed = try Certificate(parsing: czmq)
        #expect(parsed["metadata", "name"] == "worker 7")
        #expect(parsed["metadata", "organisation"] == "amnesty")
        #expect(parsed.curvePublicKey?.count == 32)
        #expect(parsed.curveSecretKey == nil)
        #expect(try Certificate(parsing: parsed.text(header: ["x"])) == parsed)

        var withSecret = parsed
        withSecret["curve", "secret-key"] = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
        #expect(withSecret.publicPart == parsed)

        #expect(throws: Certificate.SyntaxError.self) { try Certificate(parsing: "    key = \"orphan\"") }
        do {
            _ = try Certificate(parsing: "curve\n    public-key \"no equals\"")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.line == 2)
        }
    }

    @Test func secretKeyFilesMustBePrivate() throws {
        let directory = NSTemporaryDirectory() + "ovs-cert-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keys = try CurveKeyPair.generate()
        var certificate = Certificate()
        certificate["curve", "public-key"] = Z85.encode(keys.publicKey)
        certificate["curve", "secret-key"] = Z85.encode(keys.secretKey)
        let path = directory + "/k.key_secret"
        try CertificateFile.create(path, text: certificate.text(header: []), mode: 0o600)
        #expect(try CertificateFile.read(path, secret: true).curveSecretKey == keys.secretKey)
        #expect(throws: CertificateFile.Failure.self, "never overwrites") {
            try CertificateFile.create(path, text: "", mode: 0o600)
        }
        chmod(path, 0o644)
        do {
            _ = try CertificateFile.read(path, secret: true)
            Issue.record("a secret readable by others was accepted")
        } catch {
            #expect(error.message.contains("chmod 600"))
        }
        // A secret whose public half was swapped is refused.
        chmod(path, 0o600)
        var wrong = certificate
        wrong["curve", "public-key"] = Z85.encode(try CurveKeyPair.generate().publicKey)
        try CertificateFile.create(directory + "/w.key_secret", text: wrong.text(header: []), mode: 0o600)
        #expect(throws: CertificateFile.Failure.self) { try CertificateFile.read(directory + "/w.key_secret", secret: true) }
    }

    @Test(arguments: [
        ("tcp://127.0.0.1:5555", true), ("tcp://127.9.8.7:1", true), ("tcp://localhost:5555", true),
        ("tcp://[::1]:5555", true), ("ipc:///run/oversight.sock", true), ("inproc://x", true),
        ("tcp://*:5555", false), ("tcp://0.0.0.0:5555", false), ("tcp://192.0.2.2:5555", false),
        ("tcp://coordinator.example:5555", false), ("tcp://[2001:db8::1]:5555", false),
        ("tcp://127.0.0.1.evil.example:5555", false), ("tcp://eth0;127.0.0.1:5555", true), ("udp://127.0.0.1:1", false),
    ])
    func loopbackEndpoints(endpoint: String, loopback: Bool) {
        #expect(Endpoint.isLoopback(endpoint) == loopback)
    }

    /// A CURVE server with a ZAP handler over real TCP: a known key gets in and its messages
    /// carry the user id the handler chose; an unknown key is refused and nothing reaches the server.
    @Test func zapAllowsKnownKeysAndRefusesOthers() throws {
        let context = ZMQContext()
        let server = try CurveKeyPair.generate(), known = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let requests = Mailbox<ZAPRequest>()
        let zap = try ZAPHandler(context: context) { request in
            requests.post(request)
            return request.curvePublicKey == known.publicKey ? .allow(userID: "amnesty") : .deny(reason: "unknown key")
        }
        defer { zap.stop() }
        let router = try ZMQSocket(context, .router)
        try router.makeCurveServer(server, zapDomain: "test")
        try router.bind("tcp://127.0.0.1:*")

        let good = try ZMQSocket(context, .dealer)
        try good.makeCurveClient(known, serverKey: server.publicKey)
        try good.connect(router.lastEndpoint)
        try good.send([Array("hello".utf8)])
        let got = try #require(try receive(router))
        #expect(got.frames.last == Array("hello".utf8))
        #expect(got.userID == "amnesty")

        let bad = try ZMQSocket(context, .dealer)
        try bad.makeCurveClient(stranger, serverKey: server.publicKey)
        try bad.connect(router.lastEndpoint)
        try bad.send([Array("let me in".utf8)], dontWait: true)
        #expect(try receive(router, timeout: 700) == nil)
        let seen = requests.drain()
        #expect(seen.contains { $0.curvePublicKey == stranger.publicKey && $0.domain == "test" && $0.mechanism == "CURVE" })

        // A plain (NULL mechanism) client cannot talk to a CURVE server at all.
        let plain = try ZMQSocket(context, .dealer)
        try plain.connect(router.lastEndpoint)
        try plain.send([Array("plain".utf8)], dontWait: true)
        #expect(try receive(router, timeout: 500) == nil)
        for s in [good, bad, plain, router] { s.close() }
    }

    @Test func malformedZAPRequestsAreAnsweredWithAnError() {
        let reply = ZAPHandler.answer([Array("2.0".utf8), [7]]) { _ in .allow(userID: "x") }
        #expect(reply[1] == [7])
        #expect(reply[2] == Array("500".utf8))
    }
}
