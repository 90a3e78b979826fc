public import Identifiers
/// One record of a submission chunk, with its line number in the submitted file.
public struct SubmittedRecord: Hashable, Sendable {
    public enum Body: Hashable, Sendable {
        /// The record as JSON text, to be validated by the coordinator.
        case json([UInt8])
        /// The client could not turn the line into a record (e.g. a CSV row with the wrong
        /// number of fields); kept so that the coordinator records the rejection.
        case malformed(raw: [UInt8], field: String, message: String)
        /// A line larger than the wire carries: its first bytes, its length and its SHA-256,
        /// kept as a rejection.
        case oversized(prefix: [UInt8], bytes: UInt64, sha256: [UInt8])
    }
    public let line: Int64
    public let body: Body
    public init(line: Int64, body: Body) { self.line = line; self.body = body }
}

/// A record the coordinator refused, and why.
public struct Rejection: Hashable, Sendable {
    public let line: Int64
    public let field: String
    public let message: String
    public init(line: Int64, field: String, message: String) { self.line = line; self.field = field; self.message = message }
}

/// Progress of one batch as the coordinator sees it.
public struct BatchProgress: Hashable, Sendable {
    public enum State: UInt8, Sendable { case receiving = 0, running = 1, completed = 2, cancelled = 3, unknown = 255 }
    public let batchID: BatchID
    public let state: State
    public let accepted: Int64
    public let rejected: Int64
    public let done: Int64
    public let failed: Int64
    public init(batchID: BatchID, state: State, accepted: Int64, rejected: Int64, done: Int64, failed: Int64) {
        self.batchID = batchID; self.state = state; self.accepted = accepted; self.rejected = rejected; self.done = done; self.failed = failed
    }
}

/// A pack named in OPEN: a built-in criteria pack by id, a criteria pack's full JSON text, or
/// an evidence pack's full JSON text (stored so that the facts it read can be checked and
/// reproduced; not part of the criteria set).
public enum PackSpec: Hashable, Sendable {
    case builtIn(String)
    case document(String)
    case evidence(String)
}

/// What OPEN may say of a new batch beyond its name, packs and source.
public struct BatchOptions: Hashable, Sendable {
    /// The day (YYYY-MM-DD) the batch is assessed as of; empty: the coordinator's today (UTC).
    public var asOf: String
    /// The batch whose records this one assesses again (`oversight reassess`), if any.
    public var reassessmentOf: BatchID?

    public init(asOf: String = "", reassessmentOf: BatchID? = nil) { self.asOf = asOf; self.reassessmentOf = reassessmentOf }
}

/// Client → coordinator.
public enum ClientRequest: Hashable, Sendable {
    /// Start a batch (or resume one with the same id): its name, criteria packs and source file
    /// name, and the options of a new batch (a resumed batch keeps those it was opened with).
    case open(batchID: BatchID, name: String, packs: [PackSpec], source: String, options: BatchOptions = BatchOptions())
    /// Records starting after the last acknowledged chunk. Chunks are numbered from 1.
    case chunk(batchID: BatchID, number: UInt64, records: [SubmittedRecord])
    /// No more records: `chunks` is the number of the last chunk sent.
    case close(batchID: BatchID, chunks: UInt64)
    case status(batchID: BatchID)
    /// Queue the batch's dead-lettered jobs again.
    case retry(batchID: BatchID)
    /// Stop dispatching what is left of the batch; finished assessments stay.
    case cancel(batchID: BatchID)
    /// The coordinator's counters (protocol violations by kind, dropped messages, …).
    case counters
    /// Not a request: answered at once (out of the order of replies) with the coordinator's
    /// HEARTBEAT, echoing `nonce`, so that a client notices a dead or replaced coordinator.
    case heartbeat(nonce: UInt64)

    public enum Command: UInt8, Sendable {
        case open = 0x20, chunk = 0x22, close = 0x24, status = 0x26, retry = 0x28, cancel = 0x2A, counters = 0x2C, heartbeat = 0x30
    }

    public func encode() -> [[UInt8]] {
        var w = ByteWriter()
        let command: Command
        switch self {
        case .open(let id, let name, let packs, let source, let options):
            command = .open; w.batchID(id); w.string(name)
            w.u32(UInt32(packs.count))
            for pack in packs {
                switch pack {
                case .builtIn(let packID): w.u8(0); w.string(packID)
                case .document(let text): w.u8(1); w.blob(Array(text.utf8))
                case .evidence(let text): w.u8(2); w.blob(Array(text.utf8))
                }
            }
            w.string(source)
            w.string(options.asOf)
            w.raw(options.reassessmentOf?.bytes ?? [UInt8](repeating: 0, count: 16))
        case .chunk(let id, let number, let records):
            command = .chunk
            w = ByteWriter(capacity: records.reduce(32) { $0 + 16 + $1.sizeHint })
            w.batchID(id); w.u64(number); w.u32(UInt32(records.count))
            for r in records {
                w.u64(UInt64(bitPattern: r.line))
                switch r.body {
                case .json(let bytes): w.u8(0); w.blob(bytes)
                case .malformed(let raw, let field, let message): w.u8(1); w.blob(raw); w.string(field); w.string(message)
                case .oversized(let prefix, let bytes, let sha256): w.u8(2); w.blob(prefix); w.u64(bytes); w.raw(sha256)
                }
            }
        case .close(let id, let chunks): command = .close; w.batchID(id); w.u64(chunks)
        case .status(let id): command = .status; w.batchID(id)
        case .retry(let id): command = .retry; w.batchID(id)
        case .cancel(let id): command = .cancel; w.batchID(id)
        case .counters: return Envelope.frames(Command.counters.rawValue)
        case .heartbeat(let nonce): command = .heartbeat; w.u64(nonce)
        }
        return Envelope.frames(command.rawValue, w.bytes)
    }

    public static func decode(_ frames: ArraySlice<[UInt8]>) throws(WireError) -> ClientRequest {
        let (byte, payload) = try Envelope.open(frames)
        guard let command = Command(rawValue: byte) else { throw WireError(.unknownCommand, "client command 0x\(String(byte, radix: 16))") }
        if command == .counters {
            try Envelope.empty(payload, "COUNTERS")
            return .counters
        }
        var r = try Envelope.body(payload, "client request")
        let message: ClientRequest
        switch command {
        case .open:
            let id = try r.batchID()
            let name = try r.string("name")
            let n = try r.count("packs", minimumElementSize: 3)
            guard n >= 1 && n <= 64 else { throw WireError(.invalidValue, "OPEN names \(n) packs; 1 to 64 are allowed") }
            var packs: [PackSpec] = []
            for _ in 0..<n {
                switch try r.u8("pack kind") {
                case 0: packs.append(.builtIn(try r.string("pack id")))
                case let kind where kind == 1 || kind == 2:
                    let bytes = try r.blob("pack document", limit: Envelope.maximumPackSize)
                    guard let text = String(validating: bytes, as: UTF8.self) else { throw WireError(.invalidValue, "pack document is not valid UTF-8") }
                    packs.append(kind == 1 ? .document(text) : .evidence(text))
                case let kind: throw WireError(.invalidValue, "pack kind \(kind)")
                }
            }
            let source = try r.string("source")
            // The options are optional: an OPEN that ends after its source has none.
            var options = BatchOptions()
            if r.remaining > 0 {
                options.asOf = try r.string("as_of")
                let link = try r.batchID()
                if link.bytes != [UInt8](repeating: 0, count: 16) { options.reassessmentOf = link }
            }
            message = .open(batchID: id, name: name, packs: packs, source: source, options: options)
        case .chunk:
            let id = try r.batchID()
            let number = try r.u64("chunk number")
            let n = try r.count("records", minimumElementSize: 13)
            var records: [SubmittedRecord] = []
            records.reserveCapacity(n)
            for _ in 0..<n {
                let line = Int64(bitPattern: try r.u64("line"))
                switch try r.u8("record kind") {
                case 0: records.append(SubmittedRecord(line: line, body: .json(try r.blob("record", limit: Envelope.maximumRecordSize))))
                case 1:
                    let raw = try r.blob("raw line", limit: Envelope.maximumRecordSize)
                    records.append(SubmittedRecord(line: line, body: .malformed(raw: raw, field: try r.string("field"), message: try r.string("message"))))
                case 2:
                    let prefix = try r.blob("line prefix", limit: Envelope.rejectedPrefixSize)
                    let bytes = try r.u64("line length")
                    records.append(SubmittedRecord(line: line, body: .oversized(prefix: prefix, bytes: bytes, sha256: try r.sha256("line sha256"))))
                case let kind: throw WireError(.invalidValue, "record kind \(kind)")
                }
            }
            message = .chunk(batchID: id, number: number, records: records)
        case .close: message = .close(batchID: try r.batchID(), chunks: try r.u64("chunks"))
        case .status: message = .status(batchID: try r.batchID())
        case .retry: message = .retry(batchID: try r.batchID())
        case .cancel: message = .cancel(batchID: try r.batchID())
        case .counters: message = .counters
        case .heartbeat: message = .heartbeat(nonce: try r.u64("nonce"))
        }
        try r.finish("client request")
        return message
    }
}

extension SubmittedRecord {
    /// What of this line the input digest covers: kind 0 the record's JSON, kind 1 the raw
    /// line, kind 2 (too large to send) the line's SHA-256.
    public var digestPart: (kind: UInt8, bytes: [UInt8]) {
        switch body {
        case .json(let bytes): (0, bytes)
        case .malformed(let raw, _, _): (1, raw)
        case .oversized(_, _, let sha256): (2, sha256)
        }
    }

    public var sizeHint: Int {
        switch body {
        case .json(let b): b.count
        case .malformed(let raw, let f, let m): raw.count + f.utf8.count + m.utf8.count + 4
        case .oversized(let prefix, _, _): prefix.count + 44
        }
    }
}

/// What a batch has stored of its input: the last line and the digest over every line so far
/// (see `InputDigest` in the domain, and "Input digest" in Schemas/protocol.md).
public struct StoredInput: Hashable, Sendable {
    public let lastLine: Int64
    public let sha256: [UInt8]
    public init(lastLine: Int64, sha256: [UInt8]) { self.lastLine = lastLine; self.sha256 = sha256 }
}

/// One of the coordinator's counters.
public struct Counter: Hashable, Sendable {
    public let name: String
    public let value: UInt64
    public init(name: String, value: UInt64) { self.name = name; self.value = value }
}

/// Coordinator → client.
public enum ClientReply: Hashable, Sendable {
    /// The batch is open; `acknowledgedChunks` were stored before (resume after them);
    /// `window` is how many chunks may be in flight unacknowledged; `input` is the digest of
    /// every line stored so far, which a resuming client must match.
    case opened(batchID: BatchID, acknowledgedChunks: UInt64, window: UInt32, input: StoredInput)
    case acknowledged(batchID: BatchID, number: UInt64, accepted: UInt32, rejections: [Rejection])
    case closed(BatchProgress)
    case status(BatchProgress)
    /// The request failed; `code` is stable for programs, `message` says what to do. `batchID`
    /// and `chunk` name what it was about (nil: a request that named none, or could not be read).
    case error(code: UInt16, batchID: BatchID?, chunk: UInt64?, message: String)
    /// The coordinator's counters, by name.
    case counters([Counter])
    /// The answer to a client's HEARTBEAT: its `nonce`, and the `instance` of the coordinator
    /// process that answered (random, drawn when it starts): another instance than the one that
    /// answered before means the coordinator restarted or a standby took over, and requests
    /// sent before are lost.
    case heartbeat(nonce: UInt64, instance: UInt64)

    public enum Command: UInt8, Sendable {
        case opened = 0x21, acknowledged = 0x23, closed = 0x25, status = 0x27, counters = 0x2D, error = 0x2F, heartbeat = 0x31
    }

    public enum ErrorCode: UInt16, Sendable {
        case unknownBatch = 1, unknownPack = 2, outOfOrder = 3, storeUnavailable = 4, badRequest = 5, closed = 6
    }

    public func encode() -> [[UInt8]] {
        var w = ByteWriter()
        let command: Command
        switch self {
        case .opened(let id, let acked, let window, let input):
            command = .opened; w.batchID(id); w.u64(acked); w.u32(window); w.u64(UInt64(bitPattern: input.lastLine)); w.raw(input.sha256)
        case .acknowledged(let id, let number, let accepted, let rejections):
            command = .acknowledged
            w.batchID(id); w.u64(number); w.u32(accepted); w.u32(UInt32(rejections.count))
            for r in rejections { w.u64(UInt64(bitPattern: r.line)); w.string(r.field); w.string(r.message) }
        case .closed(let p): command = .closed; w.progress(p)
        case .status(let p): command = .status; w.progress(p)
        case .error(let code, let id, let chunk, let message):
            command = .error; w.u16(code); w.batchID(id ?? BatchID.none); w.u64(chunk ?? 0); w.string(message)
        case .counters(let counters):
            command = .counters; w.u32(UInt32(counters.count))
            for c in counters { w.string(c.name); w.u64(c.value) }
        case .heartbeat(let nonce, let instance): command = .heartbeat; w.u64(nonce); w.u64(instance)
        }
        return Envelope.frames(command.rawValue, w.bytes)
    }

    /// ERROR as a peer of an older version reads it (OVS1: `u16 code`, `string message`), so
    /// that it can say which version it needs.
    public static func olderVersionError(_ message: String) -> [[UInt8]] {
        var w = ByteWriter()
        w.u16(ErrorCode.badRequest.rawValue)
        w.string(message)
        return [Envelope.olderVersions[0], [Command.error.rawValue], w.bytes]
    }

    public static func decode(_ frames: ArraySlice<[UInt8]>) throws(WireError) -> ClientReply {
        let (byte, payload) = try Envelope.open(frames)
        guard let command = Command(rawValue: byte) else { throw WireError(.unknownCommand, "reply command 0x\(String(byte, radix: 16))") }
        var r = try Envelope.body(payload, "client reply")
        let message: ClientReply
        switch command {
        case .opened:
            let id = try r.batchID()
            let acknowledged = try r.u64("acknowledged")
            let window = try r.u32("window")
            let line = Int64(bitPattern: try r.u64("last line"))
            message = .opened(batchID: id, acknowledgedChunks: acknowledged, window: window, input: StoredInput(lastLine: line, sha256: try r.sha256("input digest")))
        case .acknowledged:
            let id = try r.batchID()
            let number = try r.u64("chunk number")
            let accepted = try r.u32("accepted")
            let n = try r.count("rejections", minimumElementSize: 12)
            var rejections: [Rejection] = []
            for _ in 0..<n {
                rejections.append(Rejection(line: Int64(bitPattern: try r.u64("line")), field: try r.string("field"), message: try r.string("message")))
            }
            message = .acknowledged(batchID: id, number: number, accepted: accepted, rejections: rejections)
        case .closed: message = .closed(try r.progress())
        case .status: message = .status(try r.progress())
        case .error:
            let code = try r.u16("code")
            let id = try r.batchID()
            let chunk = try r.u64("chunk")
            message = .error(code: code, batchID: id == BatchID.none ? nil : id, chunk: chunk == 0 ? nil : chunk, message: try r.string("message"))
        case .counters:
            let n = try r.count("counters", minimumElementSize: 10)
            var counters: [Counter] = []
            for _ in 0..<n { counters.append(Counter(name: try r.string("counter name"), value: try r.u64("counter value"))) }
            message = .counters(counters)
        case .heartbeat: message = .heartbeat(nonce: try r.u64("nonce"), instance: try r.u64("instance"))
        }
        try r.finish("client reply")
        return message
    }
}

extension ByteWriter {
    mutating func progress(_ p: BatchProgress) {
        batchID(p.batchID); u8(p.state.rawValue)
        u64(UInt64(p.accepted)); u64(UInt64(p.rejected)); u64(UInt64(p.done)); u64(UInt64(p.failed))
    }
}

extension ByteReader {
    mutating func progress() throws(WireError) -> BatchProgress {
        let id = try batchID()
        let state = BatchProgress.State(rawValue: try u8("state")) ?? .unknown
        func count(_ what: String) throws(WireError) -> Int64 {
            let v = try u64(what)
            guard v <= UInt64(Int64.max) else { throw WireError(.invalidValue, "\(what) out of range") }
            return Int64(v)
        }
        return BatchProgress(batchID: id, state: state, accepted: try count("accepted"), rejected: try count("rejected"),
                             done: try count("done"), failed: try count("failed"))
    }
}
