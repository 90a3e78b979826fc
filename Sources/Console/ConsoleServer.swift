import Identifiers
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import HTTPTypes
import NIOSSL
import HummingbirdBcrypt
public import Logging
import Assessment
import AuditStore
import Crypto
import Foundation
import NIOCore
import Reporting
import Synchronization

/// The read-only web console: HTML pages and the JSON API behind each (`/api/…`, described in
/// Schemas/console.openapi.json), over the reader views of one login. Every response carries a
/// Content-Security-Policy that runs no script; every piece of record text is escaped.
public struct ConsoleServer: Sendable {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        /// Users and their bcrypt hashes: HTTP basic auth when given.
        public var users: [String: String]?
        public var tls: (certificate: String, key: String)?
        public init(host: String, port: Int, users: [String: String]? = nil, tls: (certificate: String, key: String)? = nil) {
            self.host = host; self.port = port; self.users = users; self.tls = tls
        }
    }

    /// The API's routes, as the OpenAPI document lists them (a test holds them to it).
    public static let apiRoutes = [
        "/api/batches", "/api/batches/{batch}", "/api/batches/{batch}/records", "/api/batches/{batch}/records/{seq}",
        "/api/batches/{batch}/deadletters", "/api/batches/{batch}/rejections", "/api/batches/{batch}/seal",
    ]

    public static let securityHeaders: [(HTTPField.Name, String)] = [
        (.contentSecurityPolicy, "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        (.xContentTypeOptions, "nosniff"),
        (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
        (.cacheControl, "no-store"),
    ]

    let pool: StorePool
    let options: Options
    let logger: Logger
    let tracker = ProgressTracker()
    public let login: String

    public init(pool: StorePool, options: Options, logger: Logger) async throws {
        self.pool = pool; self.options = options; self.logger = logger
        login = try await pool.with { try $0.currentLogin() }
    }

    /// Serves until SIGINT or SIGTERM; `onRunning` hears the address once it listens.
    public func run(onRunning: @escaping @Sendable (String) -> Void) async throws {
        let router = Router()
        router.add(middleware: SecurityHeaders())
        if let users = options.users { router.add(middleware: BasicAuth(users: users)) }
        routes(router)
        let server: HTTPServerBuilder
        if let tls = options.tls {
            let chain = try NIOSSLCertificate.fromPEMFile(tls.certificate).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: tls.key, format: .pem)
            server = try .tls(.http1(), tlsConfiguration: TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
        } else {
            server = .http1()
        }
        let scheme = options.tls == nil ? "http" : "https"
        let host = options.host.contains(":") ? "[\(options.host)]" : options.host
        let app = Application(router: router, server: server,
                              configuration: .init(address: .hostname(options.host, port: options.port), serverName: "oversight-console"),
                              onServerRunning: { channel in
                                  let port = channel.localAddress?.port ?? options.port
                                  onRunning("\(scheme)://\(host):\(port)/")
                              },
                              logger: logger)
        try await app.runService()
    }

    // MARK: Routes

    func routes(_ router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/batches"]) }
        router.get("/static/console.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: Pages.css)))
        }
        router.get("/batches") { _, _ in Self.html(Pages.batches(try await self.batchList(), login: self.login)) }
        router.get("/api/batches") { _, _ in try Self.json(try await self.batchList()) }
        router.get("/batches/:batch") { _, context in Self.html(Pages.batch(try await self.overview(try Self.batchID(context)))) }
        router.get("/api/batches/:batch") { _, context in try Self.json(try await self.overview(try Self.batchID(context))) }
        router.get("/batches/:batch/records") { request, context in
            let (batch, filter, page) = try Self.listing(request, context)
            return Self.html(Pages.records(try await self.summary(batch), try await self.records(batch, filter, page), filter: filter, page: page))
        }
        router.get("/api/batches/:batch/records") { request, context in
            let (batch, filter, page) = try Self.listing(request, context)
            _ = try await self.summary(batch)
            return try Self.json(RecordPage(page: page, perPage: Self.perPage, records: try await self.records(batch, filter, page)))
        }
        router.get("/batches/:batch/records/:seq") { _, context in
            let batch = try Self.batchID(context)
            return Self.html(Pages.record(try await self.summary(batch), try await self.record(batch, try Self.seq(context))))
        }
        router.get("/api/batches/:batch/records/:seq") { _, context in
            try Self.json(try await self.record(try Self.batchID(context), try Self.seq(context)).api)
        }
        router.get("/batches/:batch/deadletters") { _, context in
            let batch = try Self.batchID(context)
            return Self.html(Pages.deadLetters(try await self.summary(batch), try await self.pool.with { try $0.deadLetters(batchID: batch, limit: 1_000) }))
        }
        router.get("/api/batches/:batch/deadletters") { _, context in
            let batch = try Self.batchID(context)
            _ = try await self.summary(batch)
            return try Self.json(try await self.pool.with { try $0.deadLetters(batchID: batch, limit: 1_000) })
        }
        router.get("/batches/:batch/rejections") { request, context in
            let (batch, _, page) = try Self.listing(request, context)
            return Self.html(Pages.rejections(try await self.summary(batch), try await self.rejections(batch, page), page: page))
        }
        router.get("/api/batches/:batch/rejections") { request, context in
            let (batch, _, page) = try Self.listing(request, context)
            _ = try await self.summary(batch)
            return try Self.json(try await self.rejections(batch, page))
        }
        router.get("/batches/:batch/seal") { _, context in
            let batch = try Self.batchID(context)
            return Self.html(Pages.seal(try await self.summary(batch), try await self.seal(batch)))
        }
        router.get("/api/batches/:batch/seal") { _, context in try Self.json(try await self.seal(try Self.batchID(context))) }
    }

    static let perPage = 50

    static func batchID(_ context: BasicRequestContext) throws -> BatchID {
        let text = try context.parameters.require("batch")
        guard let id = BatchID(text) else { throw HTTPError(.badRequest, message: "a batch id is a UUID, such as 0b7f2c4e-8d1a-4c3b-9e5f-2a6d8c1b4e70") }
        return id
    }

    static func seq(_ context: BasicRequestContext) throws -> Int64 {
        guard let seq = Int64(try context.parameters.require("seq")), seq > 0 else { throw HTTPError(.badRequest, message: "a record's seq is a whole number from 1") }
        return seq
    }

    /// A query string as an HTML form sends it (`application/x-www-form-urlencoded`: `+` is a
    /// space, then percent-decoding); the first value of a name wins. Hummingbird's query
    /// parameters keep `+`, so a search for two words from the form found nothing.
    static func formValues(_ query: String?) -> [String: String] {
        var values: [String: String] = [:]
        for pair in (query ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String? { text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = decode(parts[0]), let value = parts.count > 1 ? decode(parts[1]) : "" else { continue }
            if values[name] == nil { values[name] = value }
        }
        return values
    }

    static func listing(_ request: Request, _ context: BasicRequestContext) throws -> (BatchID, RecordFilter, Int) {
        let q = formValues(request.uri.query)
        func value(_ name: String) -> String? { q[name].flatMap { $0.isEmpty ? nil : String($0.prefix(200)) } }
        let filter = RecordFilter(verdict: value("verdict"), worstCase: value("worst_case"), system: value("system"), rule: value("rule"),
                                  operatorName: value("operator"), region: value("region"), text: value("q"))
        let page = max(1, min(100_000, value("page").flatMap(Int.init) ?? 1))
        return (try batchID(context), filter, page)
    }

    // MARK: Data

    struct BatchRow: Encodable, Sendable {
        let batch: BatchSummary
        /// Assessments a second over the last look, and the seconds still to go at that rate.
        let rate: Double?
        let etaSeconds: Double?
    }

    func batchList() async throws -> [BatchRow] {
        let batches = try await pool.with { try $0.batchSummaries() }
        var rows: [BatchRow] = []
        for b in batches {
            let (rate, eta) = await tracker.observe(b)
            rows.append(BatchRow(batch: b, rate: rate, etaSeconds: eta))
        }
        return rows
    }

    func summary(_ batch: BatchID) async throws -> BatchSummary {
        guard let found = try await pool.with({ try $0.batchSummaries(batchID: batch).first }) else {
            throw HTTPError(.notFound, message: "no batch \(batch) is visible to this login")
        }
        return found
    }

    struct Overview: Encodable, Sendable {
        let batch: BatchSummary
        let verdicts: [VerdictCount]
        let bySystem: [VerdictCount]
        let byRegion: [VerdictCount]
        let topRules: [RuleCount]
        let topQuestions: [QuestionCount]
        let evidence: EvidenceCounts
    }

    func overview(_ batch: BatchID) async throws -> Overview {
        let summary = try await self.summary(batch)
        return try await pool.with { store in
            Overview(batch: summary, verdicts: try store.verdictCounts(batchID: batch),
                     bySystem: try store.verdictCounts(batchID: batch, by: .system), byRegion: try store.verdictCounts(batchID: batch, by: .region),
                     topRules: try store.topRules(batchID: batch), topQuestions: try store.topQuestions(batchID: batch),
                     evidence: try store.evidenceCounts(batchID: batch))
        }
    }

    struct RecordPage: Encodable, Sendable {
        let page: Int
        let perPage: Int
        let records: [RecordIndexRow]
    }

    func records(_ batch: BatchID, _ filter: RecordFilter, _ page: Int) async throws -> [RecordIndexRow] {
        try await pool.with { try $0.records(batchID: batch, filter: filter, limit: Self.perPage, offset: (page - 1) * Self.perPage) }
    }

    func rejections(_ batch: BatchID, _ page: Int) async throws -> [RejectionRow] {
        try await pool.with { try $0.rejections(batchID: batch, limit: 100, offset: (page - 1) * 100) }
    }

    /// One record: its explanation from the stored result, the facts read from its text with
    /// their spans, its questions, its input as submitted and its hashes.
    struct RecordView: Sendable {
        let batch: BatchID
        let explanation: StoredExplanation
        var api: RecordAPI {
            let stored = explanation.stored
            return RecordAPI(seq: stored.seq, recordID: stored.recordID, explanation: explanation.text, matchesStoredResult: explanation.matches,
                             result: RawJSON(bytes: stored.result), record: RawJSON(bytes: stored.record),
                             inputSha256: stored.inputSHA256.hexString, rowSha256: stored.rowSHA256.hexString,
                             criteriaSha256: stored.criteriaSHA256.hexString, engine: stored.engine)
        }
    }

    struct RecordAPI: Encodable, Sendable {
        let seq: Int64
        let recordID: String?
        let explanation: String
        let matchesStoredResult: Bool
        let result: RawJSON
        let record: RawJSON
        let inputSha256: String
        let rowSha256: String
        let criteriaSha256: String
        let engine: String
    }

    func record(_ batch: BatchID, _ seq: Int64) async throws -> RecordView {
        _ = try await summary(batch)
        let explained: StoredExplanation? = try await pool.with { store in
            guard let criteria = try store.criteriaSet(batchID: batch), let stored = try store.storedResult(batchID: batch, seq: seq) else { return nil }
            return StoredExplanation.make(stored, criteria: criteria, all: true)
        }
        guard let explained else { throw HTTPError(.notFound, message: "batch \(batch) has no assessment at seq \(seq)") }
        return RecordView(batch: batch, explanation: explained)
    }

    struct SealView: Encodable, Sendable {
        struct Seal: Encodable, Sendable {
            let seal: Int, merkleRoot: String, signerKeyFingerprint: String, sealedAt: String, assessments: Int64
        }
        let seals: [Seal]
        /// The login the check ran as, and what `audit verify` said.
        let login: String
        let verified: Bool?
        let verification: String
    }

    func seal(_ batch: BatchID) async throws -> SealView {
        _ = try await summary(batch)
        let login = self.login
        return try await pool.with { store in
            let seals = try store.sealsVisible(batchID: batch).map {
                SealView.Seal(seal: $0.seal, merkleRoot: $0.merkleRoot, signerKeyFingerprint: keyFingerprint($0.signingKey), sealedAt: $0.sealedAt, assessments: $0.assessments)
            }
            guard !seals.isEmpty else { return SealView(seals: [], login: login, verified: nil, verification: "The batch is not sealed yet.") }
            do {
                guard let report = try store.verify(batchID: batch, trustedKey: nil) else {
                    return SealView(seals: seals, login: login, verified: nil, verification: "The batch is not visible to \(login).")
                }
                let said = report.problems.map(\.description) + (report.ok ? ["verified: \(report.rows) assessments recomputed; every row hash, the Merkle root and the signature match, and every accepted job is covered"] : [])
                return SealView(seals: seals, login: login, verified: report.ok, verification: said.joined(separator: "\n"))
            } catch {
                return SealView(seals: seals, login: login, verified: nil,
                                verification: "audit verify cannot run as \(login), a reader login, which sees the results' views and not the tables the check reads; run `oversight audit verify \(batch)` as a login that owns the audit tables.")
            }
        }
    }

    // MARK: Responses

    static func html(_ page: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: page)))
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}

/// A stored JSON text, sent as JSON (not as a string).
struct RawJSON: Encodable, Sendable {
    let bytes: [UInt8]
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(JSONAny(try JSONParser.parse(bytes)))
    }
}

/// A JSONValue through Encodable.
struct JSONAny: Encodable {
    let value: JSONValue
    init(_ value: JSONValue) { self.value = value }
    struct Key: CodingKey {
        var stringValue: String; var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
    func encode(to encoder: any Encoder) throws {
        switch value {
        case .null: var c = encoder.singleValueContainer(); try c.encodeNil()
        case .bool(let b): var c = encoder.singleValueContainer(); try c.encode(b)
        case .number(let n): var c = encoder.singleValueContainer(); if let i = value.intValue { try c.encode(i) } else { try c.encode(n) }
        case .string(let s): var c = encoder.singleValueContainer(); try c.encode(s)
        case .array(let items): var c = encoder.unkeyedContainer(); for item in items { try c.encode(JSONAny(item)) }
        case .object(let members):
            // Keys as stored: the snake_case strategy leaves keys without capitals alone.
            var c = encoder.container(keyedBy: Key.self)
            for m in members { try c.encode(JSONAny(m.value), forKey: Key(stringValue: m.key)) }
        }
    }
}

/// Rate and ETA of running batches, from the assessed counts seen on earlier looks.
actor ProgressTracker {
    private var seen: [BatchID: (at: Date, assessed: Int64, rate: Double?)] = [:]

    func observe(_ b: BatchSummary) -> (rate: Double?, eta: Double?) {
        let now = Date()
        let remaining = Double(max(0, b.accepted - b.assessed - b.deadLetters))
        guard b.state == "running" || b.state == "receiving" else { seen[b.batchID] = nil; return (nil, nil) }
        var rate: Double?
        if let last = seen[b.batchID] {
            let dt = now.timeIntervalSince(last.at)
            rate = dt >= 0.5 ? Double(b.assessed - last.assessed) / dt : last.rate
            if dt < 0.5 { seen[b.batchID] = (last.at, last.assessed, rate); return (rate, rate.flatMap { $0 > 0 ? remaining / $0 : nil }) }
        }
        seen[b.batchID] = (now, b.assessed, rate)
        return (rate, rate.flatMap { $0 > 0 ? remaining / $0 : nil })
    }
}

/// Every response: a Content-Security-Policy that runs no script and loads nothing from
/// elsewhere, no MIME sniffing, no referrer, no caching.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do { response = try await next(request, context) } catch let error as HTTPError {
            response = ConsoleServer.html(Pages.error(error.status.code, error.body ?? error.status.reasonPhrase))
            response.status = error.status
            for field in error.headers { response.headers[field.name] = field.value }
        }
        for (name, value) in ConsoleServer.securityHeaders { response.headers[name] = value }
        return response
    }
}

/// HTTP basic auth against bcrypt hashes (`oversight console-user add`). A credential that
/// passed once is remembered by its SHA-256, so bcrypt runs once per user and password.
struct BasicAuth<Context: RequestContext>: RouterMiddleware {
    let users: [String: String]
    let accepted = Accepted()

    final class Accepted: Sendable {
        let digests = Mutex<Set<[UInt8]>>([])
        func contains(_ d: [UInt8]) -> Bool { digests.withLock { $0.contains(d) } }
        func insert(_ d: [UInt8]) { digests.withLock { _ = $0.insert(d) } }
    }

    init(users: [String: String]) { self.users = users }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let challenge: HTTPFields = [.wwwAuthenticate: "Basic realm=\"Oversight console\", charset=\"UTF-8\""]
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else {
            throw HTTPError(.unauthorized, headers: challenge, message: "This console asks for a user name and password.")
        }
        let digest = Array(SHA256.hash(data: Array(header.utf8)))
        if !accepted.contains(digest) {
            let name = String(text[..<colon]), password = String(text[text.index(after: colon)...])
            guard let hash = users[name], Bcrypt.verify(password, hash: hash) else {
                throw HTTPError(.unauthorized, headers: challenge, message: "Wrong user name or password.")
            }
            accepted.insert(digest)
        }
        return try await next(request, context)
    }
}
