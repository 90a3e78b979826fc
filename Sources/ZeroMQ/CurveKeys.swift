import CZeroMQ

/// A CurveZMQ key pair (Curve25519), held as 32 raw bytes each. The secret never leaves this
/// value except into `zmq_setsockopt` or a certificate file written with mode 0600.
public struct CurveKeyPair: Sendable, Hashable {
    public let publicKey: [UInt8]
    public let secretKey: [UInt8]

    public init(publicKey: [UInt8], secretKey: [UInt8]) {
        precondition(publicKey.count == 32 && secretKey.count == 32, "CURVE keys are 32 bytes")
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh key pair from libzmq (libsodium's random source).
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        guard Curve.isAvailable else { throw ZMQError(operation: "zmq_curve_keypair", errno: ENOTSUP) }
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        _ = try check("zmq_curve_keypair") { zmq_curve_keypair(&pub, &sec) }
        let p = Z85.decode(String(nulTerminated: pub))!, s = Z85.decode(String(nulTerminated: sec))!
        return CurveKeyPair(publicKey: p, secretKey: s)
    }

    /// The key pair whose secret is `secretKey` (the public key is derived, never trusted from a file).
    public init(secretKey: [UInt8]) throws(ZMQError) {
        precondition(secretKey.count == 32, "CURVE keys are 32 bytes")
        var pub = [CChar](repeating: 0, count: 41)
        let secretZ85 = Array(Z85.encode(secretKey).utf8CString)
        _ = try check("zmq_curve_public") { zmq_curve_public(&pub, secretZ85) }
        self.init(publicKey: Z85.decode(String(nulTerminated: pub))!, secretKey: secretKey)
    }
}

public enum Curve {
    /// Whether this libzmq was built with CURVE (libsodium).
    public static var isAvailable: Bool { zmq_has("curve") != 0 }
}

/// Z85 (ZeroMQ RFC 32): the text form of CURVE keys, 5 characters per 4 bytes.
public enum Z85 {
    public static func encode(_ bytes: [UInt8]) -> String {
        precondition(bytes.count % 4 == 0, "Z85 encodes multiples of 4 bytes")
        var out = [CChar](repeating: 0, count: bytes.count * 5 / 4 + 1)
        _ = bytes.withUnsafeBufferPointer { zmq_z85_encode(&out, $0.baseAddress, $0.count) }
        return String(nulTerminated: out)
    }

    /// nil when `text` is not valid Z85 (wrong length or alphabet).
    public static func decode(_ text: String) -> [UInt8]? {
        let scalars = Array(text.utf8)
        guard !scalars.isEmpty, scalars.count % 5 == 0, scalars.allSatisfy({ alphabet.contains($0) }) else { return nil }
        var out = [UInt8](repeating: 0, count: scalars.count * 4 / 5)
        let ok = zmq_z85_decode(&out, text) != nil
        return ok ? out : nil
    }

    private static let alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)
}

extension ZMQSocket {
    /// Makes this socket a CURVE server: peers must know `keys.publicKey` and pass the ZAP handler.
    public func makeCurveServer(_ keys: CurveKeyPair, zapDomain: String) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVER, Int32(1))
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: keys.secretKey)
        try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(zapDomain.utf8))
    }

    /// Makes this socket a CURVE client of the server whose public key is `serverKey`.
    public func makeCurveClient(_ keys: CurveKeyPair, serverKey: [UInt8]) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: serverKey)
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: keys.publicKey)
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: keys.secretKey)
    }

    /// Makes this (server) socket ask the ZAP handler about plain (NULL mechanism) peers too.
    public func setZAPDomain(_ domain: String) throws(ZMQError) {
        try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(domain.utf8))
    }
}

/// A CURVE client's settings: its own key pair and the server's public key.
public struct CurveClient: Sendable, Equatable {
    public let keys: CurveKeyPair
    public let serverKey: [UInt8]
    public init(keys: CurveKeyPair, serverKey: [UInt8]) {
        self.keys = keys
        self.serverKey = serverKey
    }
}

extension String {
    /// The text of a C character buffer up to its first NUL.
    init(nulTerminated chars: [CChar]) {
        self = String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
