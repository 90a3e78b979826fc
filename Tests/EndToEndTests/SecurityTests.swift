import Foundation
import Testing
import Assessment
import LibPQ
import TestSupport

/// Keys made with `oversight keys generate`, laid out as an operator would.
struct KeyRing {
    let directory: String
    var coordinatorSecret: String { directory + "/coordinator.key_secret" }
    var coordinatorPublic: String { directory + "/coordinator.key" }
    var workers: String { directory + "/workers" }
    var clients: String { directory + "/clients" }
    var strangers: String { directory + "/strangers" }

    init() throws {
        directory = NSTemporaryDirectory() + "oversight-keys-\(UUID().uuidString)"
        for sub in ["", "/workers", "/clients", "/strangers"] {
            try FileManager.default.createDirectory(atPath: directory + sub, withIntermediateDirectories: true)
        }
        try make("coordinator", in: directory)
        try make("w1", in: workers)
        try make("anna", in: clients, organisation: "amnesty")
        try make("bob", in: clients, organisation: "hrw")
        try make("mallory", in: strangers)
        try make("eve", in: strangers, organisation: "amnesty")
    }

    func make(_ name: String, in directory: String, organisation: String? = nil) throws {
        let result = try OversightBinary.runSplit(["keys", "generate", name, "--directory", directory]
                                                  + (organisation.map { ["--organisation", $0] } ?? []))
        guard result.status == 0 else { throw RelayError(description: "keys generate \(name): \(result.stderr)") }
    }

    func peer(_ secret: String) -> [String] { ["--key", secret, "--coordinator-key", coordinatorPublic] }
}

/// A coordinator with CURVE and allowlists, as a separate process on a fresh database.
final class SecureSystem {
    let keys: KeyRing
    let conninfo: String
    let workerEndpoint: String
    let clientEndpoint: String
    let coordinator: RunningProcess
    var workers: [RunningProcess] = []

    let curve: Bool

    /// With `curve` false: the same coordinator in plain TCP, which off loopback needs --insecure.
    init(label: String, host: String = "127.0.0.1", curve: Bool = true, extra: [String] = []) throws {
        keys = try KeyRing()
        self.curve = curve
        conninfo = try TestDatabase.create(label)
        workerEndpoint = "tcp://\(host):\(freeLoopbackPort())"
        clientEndpoint = "tcp://\(host):\(freeLoopbackPort())"
        let security = curve ? ["--key", keys.coordinatorSecret, "--worker-keys", keys.workers, "--client-keys", keys.clients] : ["--insecure"]
        coordinator = try RunningProcess(["coordinator", "--database", conninfo, "--worker-endpoint", workerEndpoint,
                                          "--client-endpoint", clientEndpoint, "--heartbeat-interval", "200"] + security + extra,
                                         logPath: keys.directory + "/coordinator.log")
        try coordinator.waitForLog("coordinator listening")
    }

    @discardableResult
    func startWorker(_ secret: String, endpoint: String? = nil, database: String? = nil, launcher: [String] = [], _ extra: [String] = []) throws -> RunningProcess {
        let worker = try RunningProcess(["worker", "--coordinator", endpoint ?? workerEndpoint, "--database", database ?? conninfo,
                                         "--heartbeat-interval", "200"] + peer(secret) + extra,
                                        logPath: keys.directory + "/worker-\(workers.count + 1).log", launcher: launcher)
        workers.append(worker)
        return worker
    }

    func submit(_ file: String, as secret: String, _ extra: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
        try OversightBinary.runSplit(["submit", file, "--coordinator", clientEndpoint] + peer(secret) + extra, timeout: 120)
    }

    /// The options a worker or client needs to reach this coordinator.
    func peer(_ secret: String) -> [String] { curve ? keys.peer(secret) : ["--insecure"] }

    var logs: String { ([coordinator] + workers).map { "--- \($0.logPath)\n\($0.log)" }.joined(separator: "\n") }

    func stop() { for p in workers + [coordinator] { p.stop() } }
    deinit { stop(); try? FileManager.default.removeItem(atPath: keys.directory) }
}

func writeRecords(_ count: Int, seed: UInt64, to path: String) throws {
    var text = ""
    for record in SyntheticDeployments(count: count, seed: seed) { text += record.canonicalString + "\n" }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}


@Suite(.serialized) struct SecurityTests {
    /// A worker whose key is not allowed gets no job; a client whose key is not allowed cannot
    /// submit; both are logged by fingerprint and no secret reaches a log.
    @Test func unknownKeysGetNothing() throws {
        let system = try SecureSystem(label: "curveauth")
        let file = system.keys.directory + "/batch.jsonl"
        try writeRecords(200, seed: 5, to: file)
        let mallory = system.keys.strangers + "/mallory.key_secret"
        try system.startWorker(mallory)
        let sent = try system.submit(file, as: system.keys.clients + "/anna.key_secret")
        #expect(sent.status == 0, "\(sent.stderr)\n\(system.logs)")
        let batch = sent.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let db = try PGConnection(system.conninfo)
        // The refusal is the condition: once the worker has been told, it never got a job.
        try waitUntil("the unknown worker is refused") { system.coordinator.log.contains("refused a worker") }
        #expect(try db.query("SELECT count(*) FROM oversight.assessments").int(0, 0) == 0, "the unknown worker got no job")
        let fingerprint = try OversightBinary.runSplit(["keys", "show", system.keys.strangers + "/mallory.key"]).stdout
            .split(separator: "\n").first { $0.hasPrefix("curve") }!.split(separator: " ").last!
        #expect(system.coordinator.log.contains("refused a worker"))
        #expect(system.coordinator.log.contains(String(fingerprint)), "refusals name the key's fingerprint")

        let eve = try system.submit(file, as: system.keys.strangers + "/eve.key_secret", ["--timeout", "3"])
        #expect(eve.status != 0)
        #expect(eve.stderr.contains("the coordinator refused this client's key"), "\(eve.stderr)")
        #expect(system.workers[0].log.contains("the coordinator refused this worker's key"), "\(system.workers[0].log)")
        #expect(try db.query("SELECT count(*) FROM oversight.batches").int(0, 0) == 1, "nothing of eve's was stored")
        #expect(system.coordinator.log.contains("refused a client"))

        // Allowed on the fly: its public key into the allowlist, SIGHUP, and the same worker
        // process (which kept trying) gets in and does the work.
        try FileManager.default.copyItem(atPath: system.keys.strangers + "/mallory.key", toPath: system.keys.workers + "/mallory.key")
        kill(system.coordinator.process.processIdentifier, SIGHUP)
        try eventually("the batch completes once the worker's key is allowed", within: 90, {
            try db.query("SELECT state FROM oversight.batch_progress WHERE batch_id = \(batch)::uuid").string(0, 0)
        }, until: { $0 == "completed" })
        #expect(try db.query("SELECT count(*), count(DISTINCT worker) FROM oversight.assessments").int(0, 0) == 200)
        #expect(system.coordinator.log.contains("key allowlists loaded") && system.coordinator.process.isRunning, "reloaded, not restarted")
        // No secret key text in any log.
        for file in ["coordinator.key_secret", "workers/w1.key_secret", "strangers/mallory.key_secret", "clients/anna.key_secret"] {
            let secret = try String(contentsOfFile: system.keys.directory + "/" + file, encoding: .utf8)
                .split(separator: "\n").filter { $0.contains("secret-key") }.map { $0.split(separator: "\"")[1] }
            for s in secret { #expect(!system.logs.contains(String(s)), "\(file) leaked") }
        }
        system.stop()
    }

    /// Batches belong to the submitting key's organisation: another organisation's client cannot
    /// touch them, and each organisation's reader login sees only its own, through the CLI and SQL.
    /// The completed batch is sealed; a superuser's change to one row is named by `audit verify`.
    @Test func organisationsAreIsolatedAndTheAuditIsSealed() throws {
        let system = try SecureSystem(label: "tenancy")
        try system.startWorker(system.keys.workers + "/w1.key_secret")
        let file = system.keys.directory + "/batch.jsonl"
        try writeRecords(300, seed: 8, to: file)
        let anna = system.keys.clients + "/anna.key_secret", bob = system.keys.clients + "/bob.key_secret"
        let sent = try system.submit(file, as: anna, ["--wait"])
        #expect(sent.status == 0, "\(sent.stderr)\n\(system.logs)")
        let batch = sent.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let bobs = try system.submit(file, as: bob, ["--wait"])
        #expect(bobs.status == 0)
        let bobBatch = bobs.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // Bob's client cannot cancel or retry Anna's batch: to him it does not exist.
        for verb in ["cancel", "retry"] {
            let result = try OversightBinary.runSplit([verb, batch, "--coordinator", system.clientEndpoint] + system.keys.peer(bob))
            #expect(result.status != 0, "\(verb)")
            #expect(result.stderr.contains("no batch"), "\(verb): \(result.stderr)")
        }
        let db = try PGConnection(system.conninfo)
        let owners = try db.query("SELECT batch_id::text, organisation, state FROM oversight.batch_progress ORDER BY organisation")
        #expect(owners.string(0, 0) == batch && owners.string(0, 1) == "amnesty" && owners.string(0, 2) == "completed")
        #expect(owners.string(1, 0) == bobBatch && owners.string(1, 1) == "hrw")

        // Reader logins, made with the CLI; each reads only its organisation.
        let suffix = UInt32.random(in: 0...UInt32.max)
        let annaReader = "e2e_anna_\(suffix)", bobReader = "e2e_bob_\(suffix)"
        var logins: [String: String] = [:]
        for (org, role) in [("amnesty", annaReader), ("hrw", bobReader)] {
            let made = try OversightBinary.runSplit(["grant-reader", org, "--role", role, "--database", system.conninfo])
            #expect(made.status == 0, "\(made.stderr)")
            #expect(made.stdout.hasPrefix("password for \(role): "), "a generated password, shown once")
            let password = String(made.stdout.split(separator: "\n").first?.dropFirst("password for \(role): ".count) ?? "")
            logins[role] = try TestDatabase.login(system.conninfo, user: role, password: password)
        }
        defer { for role in [annaReader, bobReader] { _ = try? db.runScript("DROP OWNED BY \(role); DROP ROLE \(role)") } }
        let asAnna = logins[annaReader]!, asBob = logins[bobReader]!
        // The password is checked (scram-sha-256 on the test cluster): a wrong one is refused.
        #expect(throws: PQError.self) { _ = try PGConnection(try TestDatabase.login(system.conninfo, user: annaReader, password: "wrong")) }
        let own = try OversightBinary.runSplit(["results", batch, "--format", "csv", "--database", asAnna])
        #expect(own.status == 0, "\(own.stderr)")
        #expect(own.stdout.split(separator: "\n").count == 301)
        let foreign = try OversightBinary.runSplit(["results", batch, "--database", asBob])
        #expect(foreign.status == 1)
        #expect(foreign.stderr.contains("no batch"))
        let listed = try OversightBinary.runSplit(["status", "--database", asBob])
        #expect(listed.stdout.contains(bobBatch) && !listed.stdout.contains(batch), "\(listed.stdout)")
        let sql = try PGConnection(asBob)
        #expect(try sql.query("SELECT count(*) FROM oversight.results").int(0, 0) == 300)
        #expect(try sql.query("SELECT count(*) FROM oversight.results WHERE batch_id = \(batch)::uuid").int(0, 0) == 0)
        #expect(throws: PQError.self) { try sql.query("SELECT count(*) FROM oversight.assessments") }

        // The seal holds, and names the row a superuser changed.
        let verified = try OversightBinary.runSplit(["audit", "verify", batch, "--trusted-key", system.keys.coordinatorPublic, "--database", system.conninfo])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(verified.stdout.contains("verified: 300 assessments"))
        // Checked against another key: refused, and both fingerprints are shown.
        let otherKey = try OversightBinary.runSplit(["keys", "generate", "impostor", "--directory", system.keys.directory])
        #expect(otherKey.status == 0, "\(otherKey.stderr)")
        let wrong = try OversightBinary.runSplit(["audit", "verify", batch, "--trusted-key", system.keys.directory + "/impostor.key", "--database", system.conninfo])
        #expect(wrong.status == 1)
        #expect(wrong.stdout.contains("the trusted key is ") && wrong.stdout.contains("the seal was signed by "), "\(wrong.stdout)")
        try db.runScript("ALTER TABLE oversight.assessments DISABLE TRIGGER USER")
        try db.query("UPDATE oversight.assessments SET result = replace(result::text, '\"score\":', '\"score\":9')::json WHERE batch_id = \(batch)::uuid AND seq = 123")
        try db.runScript("ALTER TABLE oversight.assessments ENABLE TRIGGER USER")
        let tampered = try OversightBinary.runSplit(["audit", "verify", batch, "--database", system.conninfo])
        #expect(tampered.status == 1)
        #expect(tampered.stdout.contains("seq 123"), "\(tampered.stdout)")
        #expect(!tampered.stdout.contains("seq 124"))
        #expect(tampered.stderr.contains("verification FAILED: 1 altered, 0 missing, 0 extra"))
        system.stop()
    }

    /// Quotes, backslashes, NUL and long Unicode in every free-text field arrive in PostgreSQL
    /// byte for byte; a control character in an identifier is refused with the field named.
    @Test func hostileStringsArriveIntact() throws {
        let system = try SecureSystem(label: "hostile")
        try system.startWorker(system.keys.workers + "/w1.key_secret")
        let hostile = #"q\"uo'te \\back\\slash\u0000nul ; DROP TABLE oversight.jobs; -- $1 %s 🛰️👁️‍🗨️ שלום עליכם \u202e ZW\u200dJ "#
            + String(repeating: "ü̈", count: 150)
        func record(_ n: Int) -> String {
            let id = #"id-\#(n) \"q\" \\ ☃ 🛰️"#
            return #"{"id":"\#(id)","summary":"\#(hostile)","operator":{"name":"\#(hostile)","country":"DE"},"# +
                #""system":{"type":"facial_recognition","vendor":"\#(hostile)"},"sources":[{"url":"\#(hostile)","publisher":"\#(hostile)","date":"\#(hostile.prefix(60))"}]}"#
        }
        var lines = (1...20).map(record)
        lines.append(#"{"id":"bad\u0000id","system":{"type":"alpr"}}"#)
        lines.append(String(repeating: #"{"summary":"#, count: 1) + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}")
        lines.append(#"{"id":"lone","summary":"\ud800"}"#)
        let file = system.keys.directory + "/hostile.jsonl"
        var bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
        bytes += Array(#"{"id":"latin1","summary":""#.utf8) + [0xE9, 0x28] + Array("\"}\n".utf8)  // invalid UTF-8
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let sent = try system.submit(file, as: system.keys.clients + "/anna.key_secret", ["--wait"])
        #expect(sent.status == 0, "\(sent.stderr)\n\(system.logs)")
        #expect(sent.stderr.contains("hostile.jsonl:21: field \"id\""), "\(sent.stderr)")
        #expect(sent.stderr.contains("hostile.jsonl:22:") && sent.stderr.contains("nesting deeper than 64 levels"), "\(sent.stderr)")
        #expect(sent.stderr.contains("hostile.jsonl:23:"), "a lone surrogate is not text")
        #expect(sent.stderr.contains("hostile.jsonl:24:") && sent.stderr.contains("not valid UTF-8"), "\(sent.stderr)")
        #expect(sent.stderr.contains("20 assessed, 0 failed, 4 rejected"), "\(sent.stderr)")
        let db = try PGConnection(system.conninfo)
        let rows = try db.query("SELECT j.seq, j.record, a.record_id, a.result::text FROM oversight.jobs j JOIN oversight.assessments a USING (batch_id, seq) ORDER BY j.seq")
        #expect(rows.rowCount == 20)
        for i in 0..<rows.rowCount {
            #expect(rows.textBytes(i, 1) == Array(lines[i].utf8), "record \(i + 1) stored byte for byte")
            let parsed = try JSONParser.parse(lines[i])
            #expect(rows.string(i, 2) == parsed["id"]?.stringValue)
            #expect(parsed["operator"]?["name"]?.stringValue?.contains("\u{0}") == true)
            #expect((try? JSONParser.parse(rows.string(i, 3)!)) != nil)
        }
        let rejected = try db.query("SELECT field, message, raw FROM oversight.rejected_records ORDER BY line")
        #expect(rejected.rowCount == 4)
        #expect(rejected.string(0, 0) == "id" && rejected.string(0, 1)!.contains("control characters"))
        let raw = try #require(rejected.bytes(3, 2))
        #expect(String(decoding: raw, as: UTF8.self).contains("latin1") && raw.contains(0xE9), "the unreadable line is kept byte for byte")
        system.stop()
    }

    /// A batch over the coordinator's record limit is stopped with a clear error, and a record
    /// over the size limit is rejected by line; nothing past the limit is stored.
    @Test func intakeLimitsAreClearErrors() throws {
        let system = try SecureSystem(label: "limits", extra: ["--max-batch-records", "1000", "--max-record-bytes", "2000"])
        try system.startWorker(system.keys.workers + "/w1.key_secret")
        var text = ""
        for record in SyntheticDeployments(count: 5, seed: 2) { text += record.canonicalString + "\n" }
        text += #"{"id":"big","summary":""# + String(repeating: "x", count: 2100) + "\"}\n"
        let small = system.keys.directory + "/small.jsonl"
        try text.write(toFile: small, atomically: true, encoding: .utf8)
        let ok = try system.submit(small, as: system.keys.clients + "/anna.key_secret", ["--wait"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stderr.contains("small.jsonl:6:") && ok.stderr.contains("the limit is 2000 bytes"), "\(ok.stderr)")

        let large = system.keys.directory + "/large.jsonl"
        try writeRecords(3000, seed: 3, to: large)
        let refused = try system.submit(large, as: system.keys.clients + "/anna.key_secret")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("exceed 1000 records"), "\(refused.stderr)")
        let db = try PGConnection(system.conninfo)
        #expect(try db.query("SELECT max(accepted) FROM oversight.batches").int(0, 0)! <= 1000)
        system.stop()
    }

    /// On a network of the test's own (a namespace and a veth pair, removed at the end): plain
    /// TCP is refused unless --insecure; with CURVE a capture of everything between the worker
    /// (in the namespace) and the coordinator holds no record text, while the same run with
    /// --insecure shows it (so the capture would see it).
    @Test func trafficOffLoopbackIsEncrypted() throws {
        let network = try TestNetwork()
        defer { network.remove() }
        let host = network.hostAddress
        let marker = "MARKER-\(UUID().uuidString)"
        var text = ""
        for (i, record) in SyntheticDeployments(count: 50, seed: 12).enumerated() {
            guard case .object(var members) = record else { continue }
            members.removeAll { $0.key == "summary" }
            members.append((key: "summary", value: .string("\(marker) \(i)")))
            text += JSONValue.object(members).canonicalString + "\n"
        }

        // Without keys, no coordinator listens off loopback, no worker connects off loopback.
        let db = try TestDatabase.create("insecure")
        let refused = try OversightBinary.runSplit(["coordinator", "--database", db, "--worker-endpoint", "tcp://\(host):\(freeLoopbackPort())",
                                                    "--client-endpoint", "tcp://127.0.0.1:\(freeLoopbackPort())"], timeout: 30)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("--insecure"), "\(refused.stderr)")
        let plainWorker = try OversightBinary.runSplit(["worker", "--coordinator", "tcp://\(host):1", "--database", db], timeout: 30)
        #expect(plainWorker.status == 1)
        #expect(plainWorker.stderr.contains("--insecure"), "\(plainWorker.stderr)")

        for secure in [true, false] {
            let system = try SecureSystem(label: secure ? "curvewire" : "plainwire", host: host, curve: secure)
            try run(system, text: text, marker: marker, network: network)
            system.stop()
        }
    }

    func run(_ system: SecureSystem, text: String, marker: String, network: TestNetwork) throws {
        let secure = system.curve
        let host = network.hostAddress
        let port = Int(system.workerEndpoint.split(separator: ":").last!)!
        let relay = try TCPRelay(host: host, target: host, targetPort: port)
        defer { relay.stop() }
        // The worker in the namespace reaches PostgreSQL (on this side's loopback) through a relay too.
        let database = try TCPRelay(host: host, target: "127.0.0.1", targetPort: try #require(TestDatabase.port(of: system.conninfo)))
        defer { database.stop() }
        let file = system.keys.directory + "/marked.jsonl"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let relayed = "tcp://\(host):\(relay.port)"
        let worker = try system.startWorker(system.keys.workers + "/w1.key_secret", endpoint: relayed,
                                            database: TestDatabase.via(system.conninfo, hostaddr: host, port: database.port),
                                            launcher: network.inside([]))
        try waitUntil("the worker runs in the test's namespace") { try network.processes().contains(worker.process.processIdentifier) }
        let submit = try system.submit(file, as: system.keys.clients + "/anna.key_secret", ["--wait"])
        #expect(submit.status == 0, "\(submit.stderr)\n\(system.logs)")
        #expect(submit.stderr.contains("completed: 50 assessed"))
        #expect(relay.captured.count > 5_000, "the jobs went through the relay")
        if secure {
            #expect(!relay.contains(marker), "CURVE: no record text on the wire")
            #expect(!relay.contains("facial_recognition") && !relay.contains("OVS2"), "nor any protocol text")
        } else {
            #expect(relay.contains(marker), "the capture sees plain TCP (the control)")
        }
    }
}
