import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import Assessment
import LibPQ
import TestSupport

/// A page as headless Chromium rendered it (`--dump-dom`: the DOM after the page loaded and
/// anything on it ran).
func render(_ url: String) throws -> String {
    let profile = NSTemporaryDirectory() + "ovs-chromium-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: profile) }
    let out = try runTool("chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)", "--dump-dom", url])
    #expect(out.status == 0, "chromium --dump-dom \(url): \(out.stderr.suffix(500))")
    return out.stdout
}

/// A screenshot of the page, kept as a test artifact (under .build, never committed).
func screenshot(_ url: String, _ name: String) throws {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/test-artifacts").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let profile = NSTemporaryDirectory() + "ovs-chromium-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: profile) }
    let out = try runTool("chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)", "--window-size=1280,1600",
                                       "--screenshot=\(directory)/console-\(name).png", url])
    #expect(out.status == 0 && FileManager.default.fileExists(atPath: "\(directory)/console-\(name).png"), "screenshot of \(url)")
}

func runTool(_ tool: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [tool] + arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self), String(decoding: errors, as: UTF8.self))
}

/// One HTTP/1.1 GET over a loopback socket of the test's own: status, headers (lower-cased
/// names) and body. (Foundation's URLSession on Linux handles a 401 challenge itself.)
func get(_ url: String, user: (String, String)? = nil) throws -> (status: Int, headers: [String: String], body: String) {
    guard let parts = URLComponents(string: url), let port = parts.port else { throw RelayError(description: "not a URL: \(url)") }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw RelayError(description: "socket: \(errno)") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 60, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard connected == 0 else { throw RelayError(description: "connect \(url): \(errno)") }
    var target = parts.percentEncodedPath
    if let query = parts.percentEncodedQuery { target += "?" + query }
    var request = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    if let (name, password) = user { request += "Authorization: Basic \(Data("\(name):\(password)".utf8).base64EncodedString())\r\n" }
    request += "\r\n"
    let bytes = Array(request.utf8)
    guard write(fd, bytes, bytes.count) == bytes.count else { throw RelayError(description: "write \(url)") }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw RelayError(description: "GET \(url): no answer") }
    let head = text[..<split.lowerBound].components(separatedBy: "\r\n")
    let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return (status, headers, String(text[split.upperBound...]))
}

/// Bars of a chart in rendered markup: label → value.
func bars(_ html: String, chart: String) -> [String: Int64] {
    guard let start = html.range(of: "id=\"chart-\(chart)\""), let end = html.range(of: "</svg>", range: start.upperBound..<html.endIndex) else { return [:] }
    let svg = String(html[start.upperBound..<end.lowerBound])
    var found: [String: Int64] = [:]
    let regex = try! Regex(#"data-label="([^"]*)" data-value="(\d+)""#)
    for match in svg.matches(of: regex) {
        let label = String(match.output[1].substring ?? "").replacingOccurrences(of: "&amp;", with: "&")
        found[label] = Int64(String(match.output[2].substring ?? ""))
    }
    return found
}

@Suite(.serialized) struct ConsoleTests {
    let samples = samplesDirectory

    /// The console as Amnesty's reader login, driven with headless Chromium over every page and
    /// checked against SQL; hostile record text renders as text and runs nothing; HRW's batch is
    /// not reachable through any page or API route; the API is what the OpenAPI document says.
    @Test func theConsoleShowsOneOrganisationAndRunsNothingItIsSent() throws {
        let system = try SecureSystem(label: "console")
        try system.startWorker(system.keys.workers + "/w1.key_secret")
        let anna = system.keys.clients + "/anna.key_secret", bob = system.keys.clients + "/bob.key_secret"
        let atlas = try system.submit(samples + "/atlas-of-surveillance-sample.csv", as: anna, ["--wait", "--as-of", "2026-12-02"])
        #expect(atlas.status == 0, "\(atlas.stderr)")
        let batch = atlas.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let hostileFile = system.keys.directory + "/hostile.jsonl"
        let payloads = [
            #"{"id":"<script>document.title='PWNED'</script>","summary":"<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">","operator":{"name":"\"><svg onload=\"document.body.setAttribute('data-pwned','2')\">","country":"US"},"system":{"type":"facial_recognition","vendor":"</td></tr></table><script>document.title='PWNED'</script>"}}"#,
            #"{"id":7}"#,
            #"{"id":"plain","system":{"type":"alpr"}}"#,
        ]
        try (payloads.joined(separator: "\n") + "\n").write(toFile: hostileFile, atomically: true, encoding: .utf8)
        let hostile = try system.submit(hostileFile, as: anna, ["--wait"])
        #expect(hostile.status == 0, "\(hostile.stderr)")
        let hostileBatch = hostile.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let recordsFile = system.keys.directory + "/bob.jsonl"
        try writeRecords(40, seed: 3, to: recordsFile)
        let bobs = try system.submit(recordsFile, as: bob, ["--wait"])
        #expect(bobs.status == 0, "\(bobs.stderr)")
        let bobBatch = bobs.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let db = try PGConnection(system.conninfo)
        let role = "e2e_console_\(UInt32.random(in: 0...UInt32.max))"
        let made = try OversightBinary.runSplit(["grant-reader", "amnesty", "--role", role, "--database", system.conninfo])
        #expect(made.status == 0, "\(made.stderr)")
        let password = String(made.stdout.split(separator: "\n").first?.dropFirst("password for \(role): ".count) ?? "")
        let asAnna = try TestDatabase.login(system.conninfo, user: role, password: password)
        defer { _ = try? db.runScript("DROP OWNED BY \(role); DROP ROLE \(role)") }

        // Loopback only, unless TLS or a proxy: refused before anything listens.
        let open = try OversightBinary.runSplit(["serve", "--listen", "0.0.0.0:\(freeLoopbackPort())", "--database", asAnna])
        #expect(open.status != 0 && open.stderr.contains("is not a loopback address"), "\(open.stderr)")

        let port = freeLoopbackPort()
        let console = try RunningProcess(["serve", "--listen", "127.0.0.1:\(port)", "--database", asAnna], logPath: system.keys.directory + "/console.log")
        try console.waitForLog("console listening on http://127.0.0.1:\(port)/ as login \(role)")
        let base = "http://127.0.0.1:\(port)"

        // Every page: a CSP, no script, and the numbers SQL has.
        let list = try render(base + "/batches")
        #expect(list.contains("data-batch=\"\(batch)\"") && list.contains("data-batch=\"\(hostileBatch)\"") && !list.contains(bobBatch), "only Amnesty's batches")
        let overview = try render(base + "/batches/\(batch)")
        let settled = try db.query("SELECT verdict, count(*) FROM oversight.results WHERE batch_id = \(batch)::uuid GROUP BY 1")
        var expected: [String: Int64] = [:]
        for i in 0..<settled.rowCount { expected[settled.string(i, 0)!] = settled.int64(i, 1)! }
        #expect(bars(overview, chart: "settled") == expected, "\(bars(overview, chart: "settled")) against \(expected)")
        let systems = try db.query("SELECT system, count(*) FROM oversight.record_index WHERE batch_id = \(batch)::uuid AND system IS NOT NULL GROUP BY 1")
        let drawn = bars(overview, chart: "systems")
        for i in 0..<systems.rowCount { #expect(drawn[systems.string(i, 0)!] == systems.int64(i, 1)!, "\(systems.string(i, 0)!)") }
        let filtered = try render(base + "/batches/\(batch)/records?verdict=elevated&system=facial_recognition")
        let elevated = try db.query("""
            SELECT count(*) FROM oversight.record_index WHERE batch_id = \(batch)::uuid AND verdict = 'elevated' AND system = 'facial_recognition'
            """).int(0, 0)!
        #expect(elevated > 0 && filtered.components(separatedBy: "<tr data-seq=").count - 1 == elevated)
        let page2 = try render(base + "/batches/\(batch)/records?page=2")
        #expect(page2.contains("<tr data-seq=\"51\">") && page2.contains("page=3"), "pages of 50, the filters in the URL")
        let seq = try db.query("SELECT seq FROM oversight.results WHERE batch_id = \(batch)::uuid AND record_id = 'AOS005208'").int64(0, 0)!
        let record = try render(base + "/batches/\(batch)/records/\(seq)")
        let fired = try db.query("SELECT title FROM oversight.findings WHERE batch_id = \(batch)::uuid AND seq = \(seq) AND outcome = 'fired'")
        #expect(fired.rowCount > 0)
        for i in 0..<fired.rowCount { #expect(record.contains(fired.string(i, 0)!), "finding \(fired.string(i, 0)!)") }
        #expect(record.contains("identical byte for byte") && record.contains("<mark>upload an image to search</mark>"), "the stored explanation, the span in its text")
        let root = try db.query("SELECT merkle_root FROM oversight.seals WHERE batch_id = \(batch)::uuid ORDER BY seal DESC LIMIT 1").string(0, 0)!
        let seal = try render(base + "/batches/\(batch)/seal")
        #expect(seal.contains(root) && seal.contains("SHA256:") && seal.contains("as login \(role)"))
        let rejections = try render(base + "/batches/\(hostileBatch)/rejections")
        let rejected = try db.query("SELECT field, message FROM oversight.rejections WHERE batch_id = \(hostileBatch)::uuid")
        #expect(rejected.rowCount == 1)
        let message = rejected.string(0, 1)!.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        #expect(rejections.contains(message) && rejections.contains("<td class=\"num\">2</td>"), "line 2 and its message: \(message)")
        // A dead letter with its attempts (written here as the owner would find them after
        // repeated failures): every attempt's error is shown, as text.
        let plainSeq = try db.query("SELECT seq FROM oversight.results WHERE batch_id = \(hostileBatch)::uuid AND record_id = 'plain'").int64(0, 0)!
        for attempt in 1...3 {
            try db.query("INSERT INTO oversight.job_failures (batch_id, seq, attempt, worker, reason) VALUES (\(hostileBatch)::uuid, \(plainSeq), \(Int64(attempt)), 'w1', \("worker lost <b>\(attempt)</b>"))")
        }
        try db.query("INSERT INTO oversight.dead_letters (batch_id, seq, attempts, last_error) VALUES (\(hostileBatch)::uuid, \(plainSeq), 3, 'worker lost <b>3</b>')")
        let letters = try render(base + "/batches/\(hostileBatch)/deadletters")
        for attempt in 1...3 { #expect(letters.contains("worker lost &lt;b&gt;\(attempt)&lt;/b&gt;"), "attempt \(attempt)") }
        #expect(letters.contains("3 attempts") && !letters.contains("<b>"))
        let lettersAPI = try JSONParser.parse(try get(base + "/api/batches/\(hostileBatch)/deadletters").body)
        guard case .array(let deadList) = lettersAPI, case .array(let attempts)? = deadList.first?["failures"] else { Issue.record("no dead letters in the API"); return }
        #expect(deadList.count == 1 && attempts.count == 3)
        let dead = try render(base + "/batches/\(batch)/deadletters")
        #expect(dead.contains("No job of this batch was given up") == (try db.query("SELECT count(*) FROM oversight.dead_letter_attempts WHERE batch_id = \(batch)::uuid").int(0, 0) == 0))
        for (name, path) in [("batches", "/batches"), ("batch", "/batches/\(batch)"), ("record", "/batches/\(batch)/records/\(seq)"),
                             ("records", "/batches/\(batch)/records?verdict=elevated"), ("seal", "/batches/\(batch)/seal")] {
            try screenshot(base + path, name)
        }

        // Hostile text: shown as text, nothing ran.
        let hostileSeq = try db.query("SELECT seq FROM oversight.results WHERE batch_id = \(hostileBatch)::uuid AND record_id LIKE '<script>%'").int64(0, 0)!
        for path in ["/batches/\(hostileBatch)/records", "/batches/\(hostileBatch)/records/\(hostileSeq)", "/batches/\(hostileBatch)", "/batches"] {
            let dom = try render(base + path)
            #expect(!dom.contains("PWNED</title>") && !dom.contains("data-pwned=\""), "a script ran on \(path)")
            #expect(!dom.contains("<script") && !dom.contains("<img") && !dom.contains("<svg onload"), "markup from a record became markup on \(path)")
        }
        let hostileRecord = try render(base + "/batches/\(hostileBatch)/records/\(hostileSeq)")
        #expect(hostileRecord.contains("&lt;script&gt;document.title='PWNED'&lt;/script&gt;"), "the text itself is shown")

        // Security headers on pages, the API and errors alike.
        for path in ["/batches", "/api/batches", "/batches/\(bobBatch)", "/static/console.css"] {
            let response = try get(base + path)
            #expect(response.headers["content-security-policy"]?.contains("default-src 'none'") == true, "CSP on \(path)")
            #expect(response.headers["x-content-type-options"] == "nosniff")
        }

        // The API: every path of the OpenAPI document answers JSON for Amnesty's batch, and
        // nothing of HRW's batch through any page or route.
        let openAPI = try JSONParser.parse(try String(contentsOfFile: samples + "/../Schemas/console.openapi.json", encoding: .utf8))
        guard case .object(let paths)? = openAPI["paths"] else { Issue.record("no paths in the OpenAPI document"); return }
        #expect(paths.count == 7)
        for (template, _) in paths {
            let own = template.replacingOccurrences(of: "{batch}", with: batch).replacingOccurrences(of: "{seq}", with: String(seq))
            let response = try get(base + own)
            #expect(response.status == 200 && response.headers["content-type"] == "application/json", "\(own): \(response.status)")
            #expect((try? JSONParser.parse(response.body)) != nil, "\(own) answers JSON")
            guard template.contains("{batch}") else { continue }
            let foreign = template.replacingOccurrences(of: "{batch}", with: bobBatch).replacingOccurrences(of: "{seq}", with: "1")
            for path in [foreign, String(foreign.dropFirst(4))] {
                let response = try get(base + path)
                #expect(response.status == 404 && !response.body.contains(bobBatch.prefix(8) + "\",") && !response.body.contains("\"accepted\""), "\(path): \(response.status)")
            }
        }
        let api = try JSONParser.parse(try get(base + "/api/batches/\(batch)/records?verdict=elevated&system=facial_recognition").body)
        guard case .array(let listed)? = api["records"] else { Issue.record("no records in the API's answer"); return }
        #expect(listed.count == elevated)

        // Free text, a rule, a region: the summary's indexes list what the live views list, and
        // free text finds what SQL finds in the id, operator, system, vendor and summary.
        try eventually("the Atlas batch is summarised", within: 120, {
            try db.query("SELECT count(*) FROM oversight.current_summaries WHERE batch_id = \(batch)::uuid").int(0, 0)
        }, until: { $0 == 1 })
        let rare = try db.query("""
            SELECT rule FROM oversight.findings WHERE batch_id = \(batch)::uuid AND outcome = 'fired'
            GROUP BY rule ORDER BY count(DISTINCT seq), rule LIMIT 1
            """).string(0, 0)!
        let filters = ["q=shotspotter", "q=sheriff%27s", "q=AOS0000", "q=no+such+words", "rule=\(rare)", "region=NY", "region=US&verdict=elevated",
                       "q=police&rule=\(rare)&page=2", "q=Sheriff%27s+Office"]
        func seqs(_ filter: String) throws -> [Int64] {
            guard case .array(let rows)? = try JSONParser.parse(try get(base + "/api/batches/\(batch)/records?" + filter).body)["records"] else { return [] }
            return rows.compactMap { $0["seq"]?.intValue.map(Int64.init) }
        }
        let fromSummary = try filters.map(seqs)
        let shotspotter = try db.query("""
            SELECT seq FROM oversight.record_index WHERE batch_id = \(batch)::uuid
              AND (record_id ILIKE '%shotspotter%' OR operator ILIKE '%shotspotter%' OR system ILIKE '%shotspotter%'
                   OR vendor ILIKE '%shotspotter%' OR summary ILIKE '%shotspotter%')
            ORDER BY seq LIMIT 50
            """)
        #expect(shotspotter.rowCount > 0 && fromSummary[0] == (0..<shotspotter.rowCount).map { shotspotter.int64($0, 0)! })
        #expect(fromSummary[3].isEmpty && !fromSummary[4].isEmpty && !fromSummary[5].isEmpty)
        // Two words as the search form sends them ('+' for the space).
        let phrase = try db.query("""
            SELECT seq FROM oversight.record_index WHERE batch_id = \(batch)::uuid
              AND (record_id ILIKE '%sheriff''s office%' OR operator ILIKE '%sheriff''s office%' OR system ILIKE '%sheriff''s office%'
                   OR vendor ILIKE '%sheriff''s office%' OR summary ILIKE '%sheriff''s office%')
            ORDER BY seq LIMIT 50
            """)
        let phraseSeqs = try seqs("q=Sheriff%27s+Office")
        #expect(phrase.rowCount > 0 && phraseSeqs == (0..<phrase.rowCount).map { phrase.int64($0, 0)! })
        try db.query("DELETE FROM oversight.batch_summaries WHERE batch_id = \(batch)::uuid")
        for (filter, summarised) in zip(filters, fromSummary) {
            #expect(try seqs(filter) == summarised, "\(filter): the summary and the live views list the same records")
        }
        _ = console.stop()

        // Basic auth against a users file kept by console-user.
        let users = system.keys.directory + "/console.users"
        let added = try OversightBinary.runSplit(["console-user", "add", "editor", "--users", users], input: "correct horse battery staple\n")
        #expect(added.status == 0 && added.stderr.contains("added editor"), "\(added.stderr)")
        let text = try String(contentsOfFile: users, encoding: .utf8)
        #expect(text.contains("editor:$2") && !text.contains("correct horse"))
        let attributes = try FileManager.default.attributesOfItem(atPath: users)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let guarded = freeLoopbackPort()
        let locked = try RunningProcess(["serve", "--listen", "127.0.0.1:\(guarded)", "--users", users, "--database", asAnna], logPath: system.keys.directory + "/console2.log")
        try locked.waitForLog("asking for a user and password")
        let anonymous = try get("http://127.0.0.1:\(guarded)/api/batches")
        #expect(anonymous.status == 401 && anonymous.headers["www-authenticate"]?.hasPrefix("Basic") == true)
        #expect(try get("http://127.0.0.1:\(guarded)/api/batches", user: ("editor", "wrong password!")).status == 401)
        let allowed = try get("http://127.0.0.1:\(guarded)/api/batches", user: ("editor", "correct horse battery staple"))
        #expect(allowed.status == 200 && allowed.body.contains(batch))
        let removed = try OversightBinary.runSplit(["console-user", "remove", "editor", "--users", users])
        let after = try String(contentsOfFile: users, encoding: .utf8)
        #expect(removed.status == 0 && !after.contains("editor:"))
        _ = locked.stop()

        // Over TLS, with a certificate of the test's own: Chromium (told to accept it) gets the pages.
        let cert = system.keys.directory + "/console-cert.pem", key = system.keys.directory + "/console-key.pem"
        let made509 = try runTool("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                                              "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        #expect(made509.status == 0, "\(made509.stderr)")
        let tlsPort = freeLoopbackPort()
        let secure = try RunningProcess(["serve", "--listen", "127.0.0.1:\(tlsPort)", "--tls-cert", cert, "--tls-key", key, "--database", asAnna],
                                        logPath: system.keys.directory + "/console3.log")
        try secure.waitForLog("console listening on https://127.0.0.1:\(tlsPort)/")
        let profile = NSTemporaryDirectory() + "ovs-chromium-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let overTLS = try runTool("chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--user-data-dir=\(profile)",
                                               "--dump-dom", "https://127.0.0.1:\(tlsPort)/batches"])
        #expect(overTLS.stdout.contains("data-batch=\"\(batch)\""), "the console over TLS: \(overTLS.stderr.suffix(300))")
        let plain = try? get("http://127.0.0.1:\(tlsPort)/batches")
        #expect(plain?.status != 200, "no plain HTTP on the TLS port")
        _ = secure.stop()
        system.stop()
    }
}
