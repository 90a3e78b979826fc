import Foundation
import HummingbirdBcrypt

/// The console's users file: one `name:bcrypt-hash` line per user, mode 0600, no passwords.
public enum ConsoleUsers {
    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    public static func validName(_ name: String) -> Bool {
        (1...64).contains(name.count) && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    public static func hash(_ password: String) -> String { Bcrypt.hash(password, cost: 12) }

    /// The users and their hashes; a line that is not `name:hash` is an error naming the line.
    public static func read(_ path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Problem(description: "cannot read the users file \(path)")
        }
        var users: [String: String] = [:]
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let colon = trimmed.firstIndex(of: ":") else { throw Problem(description: "\(path):\(n + 1): not name:hash") }
            let name = String(trimmed[..<colon]), hash = String(trimmed[trimmed.index(after: colon)...])
            guard validName(name), hash.hasPrefix("$2") else {
                throw Problem(description: "\(path):\(n + 1): not a user name and a bcrypt hash; make the file with `oversight console-user add`")
            }
            users[name] = hash
        }
        return users
    }

    /// Writes the file whole, with mode 0600, replacing the old one only once the new one is written.
    public static func write(_ users: [String: String], to path: String) throws {
        let text = "# Oversight console users: name:bcrypt hash (oversight console-user add|remove)\n"
            + users.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)\n" }.joined()
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw Problem(description: "cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw Problem(description: "cannot replace \(path): \(String(cString: strerror(errno)))")
        }
    }
}
