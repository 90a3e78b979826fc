import CLibPQ

extension PGConnection {
    /// Whether `conninfo` (key=value or URI) carries a password. Such a string must not be given
    /// on a command line, where every user of the machine can read it in the process list.
    /// Unparseable strings answer false: libpq reports them when connecting.
    public static func conninfoHasPassword(_ conninfo: String) -> Bool {
        guard !conninfo.isEmpty else { return false }
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            if let errorMessage { PQfreemem(errorMessage) }
            return false
        }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "password", let value = option.pointee.val, value.pointee != 0 { return true }
            option += 1
        }
        return false
    }

    /// The password verifier for `role` that the server would store, computed here (SCRAM-SHA-256
    /// or whatever `password_encryption` says), so the clear text never travels or gets logged.
    public func encryptPassword(_ password: String, role: String) throws(PQError) -> String {
        guard let encrypted = PQencryptPasswordConn(handle, password, role, nil) else {
            throw PQError(kind: .protocolFailure, operation: "encrypt password", message: Self.trimmed(String(cString: PQerrorMessage(handle))))
        }
        defer { PQfreemem(encrypted) }
        return String(cString: encrypted)
    }
}
