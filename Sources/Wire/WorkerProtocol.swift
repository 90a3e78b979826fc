public import Identifiers
/// One job inside a JOBS bundle: the record's sequence number in its batch, how many times it
/// was sent before, and the validated record bytes, forwarded as submitted.
public struct Job: Hashable, Sendable {
    public let seq: Int64
    public let attempt: UInt16
    public let record: [UInt8]
    public init(seq: Int64, attempt: UInt16, record: [UInt8]) { self.seq = seq; self.attempt = attempt; self.record = record }
}

/// Many jobs of one batch in one message.
public struct JobBundle: Hashable, Sendable {
    public let batchID: BatchID
    /// SHA-256 of the criteria pack the batch is scored with.
    public let criteriaSHA256: [UInt8]
    public let jobs: [Job]
    public init(batchID: BatchID, criteriaSHA256: [UInt8], jobs: [Job]) {
        self.batchID = batchID; self.criteriaSHA256 = criteriaSHA256; self.jobs = jobs
    }
}

/// A job the worker could not score, with the reason.
public struct JobFailure: Hashable, Sendable {
    public let seq: Int64
    public let reason: String
    public init(seq: Int64, reason: String) { self.seq = seq; self.reason = reason }
}

/// Jobs of one batch a worker holds: received in JOBS and not yet reported in a DONE it has sent
/// (scored or not, committed or not), with the attempt each came with.
public struct HeldJobs: Hashable, Sendable {
    public let batchID: BatchID
    public let jobs: [(seq: Int64, attempt: UInt16)]
    public init(batchID: BatchID, jobs: [(seq: Int64, attempt: UInt16)]) { self.batchID = batchID; self.jobs = jobs }
    public static func == (a: HeldJobs, b: HeldJobs) -> Bool {
        a.batchID == b.batchID && a.jobs.map(\.seq) == b.jobs.map(\.seq) && a.jobs.map(\.attempt) == b.jobs.map(\.attempt)
    }
    public func hash(into h: inout Hasher) { h.combine(batchID); for j in jobs { h.combine(j.seq); h.combine(j.attempt) } }
}

/// Worker → coordinator.
public enum WorkerMessage: Hashable, Sendable {
    /// I am here: my name, how many jobs I may hold at once, and the jobs I hold already (after a
    /// reconnect, or a coordinator that restarted or failed over), so that they stay mine.
    case ready(name: String, credit: UInt32, held: [HeldJobs] = [])
    /// These jobs' results are committed; these failed.
    case done(batchID: BatchID, committed: [Int64], failed: [JobFailure])
    /// Grant this many more jobs of credit.
    case credit(UInt32)
    case heartbeat
    case disconnect

    public enum Command: UInt8, Sendable { case ready = 0x01, done = 0x02, credit = 0x03, heartbeat = 0x04, disconnect = 0x05 }

    public func encode() -> [[UInt8]] {
        switch self {
        case .ready(let name, let credit, let held):
            var w = ByteWriter(); w.string(name); w.u32(credit)
            // The held list is optional on the wire: a READY that ends after the credit holds nothing.
            if !held.isEmpty {
                w.u32(UInt32(held.count))
                for batch in held {
                    w.batchID(batch.batchID)
                    w.u32(UInt32(batch.jobs.count))
                    for job in batch.jobs { w.u64(UInt64(bitPattern: job.seq)); w.u16(job.attempt) }
                }
            }
            return Envelope.frames(Command.ready.rawValue, w.bytes)
        case .done(let batchID, let committed, let failed):
            var w = ByteWriter(capacity: 32 + committed.count * 8)
            w.batchID(batchID)
            w.u32(UInt32(committed.count))
            for seq in committed { w.u64(UInt64(bitPattern: seq)) }
            w.u32(UInt32(failed.count))
            for f in failed { w.u64(UInt64(bitPattern: f.seq)); w.string(f.reason) }
            return Envelope.frames(Command.done.rawValue, w.bytes)
        case .credit(let n):
            var w = ByteWriter(); w.u32(n)
            return Envelope.frames(Command.credit.rawValue, w.bytes)
        case .heartbeat: return Envelope.frames(Command.heartbeat.rawValue)
        case .disconnect: return Envelope.frames(Command.disconnect.rawValue)
        }
    }

    public static func decode(_ frames: ArraySlice<[UInt8]>) throws(WireError) -> WorkerMessage {
        let (byte, payload) = try Envelope.open(frames)
        guard let command = Command(rawValue: byte) else { throw WireError(.unknownCommand, "worker command 0x\(String(byte, radix: 16))") }
        switch command {
        case .ready:
            var r = try Envelope.body(payload, "READY")
            let name = try r.string("worker name")
            let credit = try r.u32("credit")
            var held: [HeldJobs] = []
            if r.remaining > 0 {
                let batches = try r.count("held batches", minimumElementSize: 20)
                for _ in 0..<batches {
                    let batchID = try r.batchID()
                    let n = try r.count("held jobs", minimumElementSize: 10)
                    var jobs: [(seq: Int64, attempt: UInt16)] = []
                    jobs.reserveCapacity(n)
                    for _ in 0..<n { jobs.append((Int64(bitPattern: try r.u64("seq")), try r.u16("attempt"))) }
                    held.append(HeldJobs(batchID: batchID, jobs: jobs))
                }
            }
            try r.finish("READY")
            guard credit > 0 else { throw WireError(.invalidValue, "READY credit must be positive") }
            return .ready(name: name, credit: credit, held: held)
        case .done:
            var r = try Envelope.body(payload, "DONE")
            let batchID = try r.batchID()
            let n = try r.count("committed seqs", minimumElementSize: 8)
            var committed: [Int64] = []
            committed.reserveCapacity(n)
            for _ in 0..<n { committed.append(Int64(bitPattern: try r.u64("seq"))) }
            let m = try r.count("failures", minimumElementSize: 10)
            var failed: [JobFailure] = []
            for _ in 0..<m { failed.append(JobFailure(seq: Int64(bitPattern: try r.u64("seq")), reason: try r.string("reason"))) }
            try r.finish("DONE")
            return .done(batchID: batchID, committed: committed, failed: failed)
        case .credit:
            var r = try Envelope.body(payload, "CREDIT")
            let n = try r.u32("credit")
            try r.finish("CREDIT")
            return .credit(n)
        case .heartbeat: try Envelope.empty(payload, "HEARTBEAT"); return .heartbeat
        case .disconnect: try Envelope.empty(payload, "DISCONNECT"); return .disconnect
        }
    }
}

/// Coordinator → worker.
public enum CoordinatorMessage: Hashable, Sendable {
    case jobs(JobBundle)
    case heartbeat
    /// The coordinator does not know this worker (e.g. it restarted) or is shutting down:
    /// the worker should announce itself again with READY.
    case disconnect

    public enum Command: UInt8, Sendable { case jobs = 0x10, heartbeat = 0x04, disconnect = 0x05 }

    public func encode() -> [[UInt8]] {
        switch self {
        case .jobs(let bundle):
            let size = bundle.jobs.reduce(56) { $0 + 14 + $1.record.count }
            var w = ByteWriter(capacity: size)
            w.batchID(bundle.batchID)
            w.raw(bundle.criteriaSHA256)
            w.u32(UInt32(bundle.jobs.count))
            for job in bundle.jobs {
                w.u64(UInt64(bitPattern: job.seq))
                w.u16(job.attempt)
                w.blob(job.record)
            }
            return Envelope.frames(Command.jobs.rawValue, w.bytes)
        case .heartbeat: return Envelope.frames(Command.heartbeat.rawValue)
        case .disconnect: return Envelope.frames(Command.disconnect.rawValue)
        }
    }

    public static func decode(_ frames: ArraySlice<[UInt8]>) throws(WireError) -> CoordinatorMessage {
        let (byte, payload) = try Envelope.open(frames)
        guard let command = Command(rawValue: byte) else { throw WireError(.unknownCommand, "coordinator command 0x\(String(byte, radix: 16))") }
        switch command {
        case .jobs:
            var r = try Envelope.body(payload, "JOBS")
            let batchID = try r.batchID()
            let sha = try r.raw(32, "pack sha256")
            let n = try r.count("jobs", minimumElementSize: 14)
            var jobs: [Job] = []
            jobs.reserveCapacity(n)
            for _ in 0..<n {
                let seq = Int64(bitPattern: try r.u64("seq"))
                let attempt = try r.u16("attempt")
                let record = try r.blob("record", limit: Envelope.maximumRecordSize)
                jobs.append(Job(seq: seq, attempt: attempt, record: record))
            }
            try r.finish("JOBS")
            return .jobs(JobBundle(batchID: batchID, criteriaSHA256: sha, jobs: jobs))
        case .heartbeat: try Envelope.empty(payload, "HEARTBEAT"); return .heartbeat
        case .disconnect: try Envelope.empty(payload, "DISCONNECT"); return .disconnect
        }
    }
}
