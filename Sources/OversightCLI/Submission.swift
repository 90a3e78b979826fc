import Identifiers
import Assessment
import Foundation
import Wire

/// Streams a batch file to the coordinator in chunks under its flow-control window, reports
/// rejected records by line, and optionally waits for the batch to finish.
struct Submission {
    var file: BatchFile
    let client: CoordinatorClient
    let batchID: BatchID
    let name: String
    let packs: [PackSpec]
    /// The as-of date and the reassessment link of a new batch.
    var options = BatchOptions()
    var chunkSize = 1_000
    var maxRejectionsShown = 20
    /// Whether the coordinator has answered OPEN once: only then is silence a restart to wait out.
    private(set) var opened = false
    /// Called with each chunk's number when its acknowledgement arrives (the bench times them).
    var onAcknowledged: ((UInt64) -> Void)?
    /// Called once, when the coordinator first says the batch exists.
    var onOpened: ((BatchID) -> Void)?
    /// Most bytes of records in one chunk (a chunk is one message, at most 64 MiB).
    var chunkBytes = 24 << 20
    /// Record ids seen so far, to report (or, with `uniqueIDs`, reject) repeats.
    var duplicates = DuplicateIDs()
    var uniqueIDs = false

    struct Outcome {
        var accepted: Int64 = 0
        var rejected: Int64 = 0
        var progress: BatchProgress?
    }

    /// Sends the whole file. If the coordinator stops answering (killed, restarting, a standby
    /// taking over), opens the batch again and resumes after the last chunk it stored, until
    /// `patience` seconds pass without an answer.
    mutating func send(showProgress: Bool, patience: Double = 300) throws -> Outcome {
        // What can be checked before a batch exists is checked first: no batch for a file with
        // no records or an unreadable header.
        if try file.next(1, maxBytes: chunkBytes).isEmpty {
            throw CoordinatorClient.Refused(message: "\(file.path) holds no records (it is empty, blank, or a CSV header alone); nothing was submitted")
        }
        file = try BatchFile(path: file.path, format: file.format, evidence: file.evidence, evidencePack: file.evidencePack)
        var silentSince: Date?
        var resumes = 0
        var resuming = false
        var outage = OutageLine()
        while true {
            do {
                return try sendOnce(showProgress: showProgress)
            } catch let error as CoordinatorClient.Unreachable where opened || error.replaced {
                // Silence after OPEN was answered is a restart to wait out (a coordinator that never
                // answered is a wrong address); a replaced coordinator lost what was in flight.
                // Nothing is lost: wait, resume.
                resuming = true
                if error.replaced {
                    // Another coordinator answers already: resume at once.
                    silentSince = nil
                    outage.say("the coordinator restarted or a standby took over (or it listens again after losing its database); resuming with it")
                } else {
                    let since = silentSince ?? Date()
                    silentSince = since
                    if Date().timeIntervalSince(since) > patience { throw error }
                    outage.say("\(error); resuming when it is back")
                    Thread.sleep(forTimeInterval: 0.5)
                }
                file = try BatchFile(path: file.path, format: file.format, evidence: file.evidence, evidencePack: file.evidencePack)
            } catch let error as CoordinatorClient.Refused where error.retryable {
                // ERROR 4: the coordinator is there but its database is away (restarting, failing
                // over). Wait it out, whether or not the batch was opened yet.
                resuming = opened
                let since = silentSince ?? Date()
                silentSince = since
                if Date().timeIntervalSince(since) > patience { throw error }
                outage.say("the coordinator's database is unavailable; waiting for it (nothing is lost)")
                Thread.sleep(forTimeInterval: 1)
                file = try BatchFile(path: file.path, format: file.format, evidence: file.evidence, evidencePack: file.evidencePack)
            } catch let error as CoordinatorClient.Refused where error.closed && resuming {
                // The coordinator stored every chunk and our CLOSE, then stopped before its answer
                // reached us (only this client closes the batch, and only after the last chunk's
                // acknowledgement): intake is done.
                printError("the batch's intake was closed before the coordinator stopped; nothing left to send")
                guard case .status(let progress) = try client.request(.status(batchID: batchID)) else { throw error }
                return Outcome(accepted: progress.accepted, rejected: progress.rejected, progress: progress)
            } catch let error as CoordinatorClient.Refused where error.resumable {
                // A restarted coordinator never saw some chunks: resume after the last one stored.
                resumes += 1
                resuming = true
                if resumes > 100 { throw error }
                printError("the coordinator lost chunks sent before it restarted; resuming after the last stored chunk")
                file = try BatchFile(path: file.path, format: file.format, evidence: file.evidence, evidencePack: file.evidencePack)
            }
        }
    }

    private mutating func sendOnce(showProgress: Bool) throws -> Outcome {
        try client.send(.open(batchID: batchID, name: name, packs: packs, source: (file.path as NSString).lastPathComponent, options: options))
        var reply = try nextReplyToOpen()
        guard case .opened(_, let acknowledged, let window, let stored) = reply else {
            throw CoordinatorClient.Refused(message: "unexpected reply to OPEN: \(reply)")
        }
        if !opened { onOpened?(batchID) }
        opened = true
        var outcome = Outcome()
        // Resume: skip the lines the coordinator already stored, proving they are this file's.
        var carry = try skipStored(stored)
        if acknowledged > 0 { printError("resuming batch \(batchID) after chunk \(acknowledged) (line \(stored.lastLine))") }
        var inFlight = 0
        var outstanding = Set<UInt64>()
        var finished = false
        var shown = 0
        var display = ProgressDisplay(label: "submitting")
        display.bytes = true
        var sentRecords: Int64 = 0
        var number = acknowledged
        while !finished || inFlight > 0 {
            while !finished && inFlight < Int(window) {
                var records = carry
                carry = []
                if records.count < chunkSize { records += try file.next(chunkSize - records.count, maxBytes: chunkBytes) }
                if records.isEmpty { finished = true; break }
                for (k, record) in records.enumerated() {
                    guard let first = duplicates.check(record) else { continue }
                    let id = duplicates.lastID
                    if duplicates.reported <= maxRejectionsShown {
                        printError("\(file.path):\(record.line): record id \"\(id)\" was already used on line \(first)\(uniqueIDs ? "; rejected (--unique-ids)" : "")")
                    }
                    if uniqueIDs, case .json(let bytes) = record.body {
                        records[k] = SubmittedRecord(line: record.line, body: .malformed(raw: bytes, field: "id",
                            message: "record id \"\(id)\" was already used on line \(first) (--unique-ids)"))
                    }
                }
                number += 1
                sentRecords += Int64(records.count)
                try client.send(.chunk(batchID: batchID, number: number, records: records))
                outstanding.insert(number)
                inFlight += 1
            }
            guard inFlight > 0 else { break }
            let reply = try client.receive()
            // A late answer to an OPEN of an earlier attempt (sent before a failover) is stale.
            if case .opened = reply { continue }
            guard case .acknowledged(_, let acknowledgedNumber, let accepted, let rejections) = reply else {
                throw CoordinatorClient.Refused(message: "unexpected reply to CHUNK: \(reply)")
            }
            // Only this attempt's chunks count; a late answer to an earlier attempt is ignored.
            guard outstanding.remove(acknowledgedNumber) != nil else { continue }
            onAcknowledged?(acknowledgedNumber)
            inFlight -= 1
            outcome.accepted += Int64(accepted)
            outcome.rejected += Int64(rejections.count)
            for r in rejections where shown < maxRejectionsShown {
                shown += 1
                let field = r.field.isEmpty ? "" : " field \"\(r.field)\":"
                printError("\(file.path):\(r.line):\(field) \(r.message) (record rejected, kept in oversight.rejected_records)")
            }
            if showProgress {
                // Bytes of the file, as bytes: a line count is not known before the end.
                display.update(done: file.bytesConsumed, total: max(file.fileSize, file.bytesConsumed),
                               detail: "\(plural(sentRecords, "record")) sent, accepted \(outcome.accepted), rejected \(outcome.rejected)")
            }
        }
        if showProgress { display.finish() }
        if duplicates.reported > maxRejectionsShown {
            printError("… and \(duplicates.reported - maxRejectionsShown) more repeated record ids")
        }
        if outcome.rejected > Int64(shown) {
            printError("… and \(outcome.rejected - Int64(shown)) more rejected records; see oversight.rejected_records")
        }
        let closed = try client.request(.close(batchID: batchID, chunks: number))
        if case .closed(let progress) = closed {
            outcome.progress = progress
            outcome.accepted = progress.accepted
            outcome.rejected = progress.rejected
        }
        return outcome
    }

    /// The reply to this attempt's OPEN. After a resume, answers to what an earlier attempt sent
    /// may arrive first: acknowledgements of its chunks, its CLOSE's answer (a coordinator that
    /// was slow, not gone), and a restarted coordinator's refusals of chunks it never saw opened
    /// (ERROR 3). All are stale; skip them (OPEN of a closed batch is answered ERROR 6).
    private func nextReplyToOpen() throws -> ClientReply {
        while true {
            do {
                let reply = try client.receive()
                switch reply {
                // Late answers to an earlier attempt's chunks, CLOSE or STATUS.
                case .acknowledged, .closed, .status: continue
                default: return reply
                }
            } catch let error as CoordinatorClient.Refused where error.resumable {
                continue
            }
        }
    }

    /// Says once what a submission waits for, until the wait ends or the reason changes.
    struct OutageLine {
        private var last: String?
        mutating func say(_ line: String) {
            guard line != last else { return }
            last = line
            printError(line)
        }
        mutating func over() {
            if last != nil { printError("the coordinator answers again") }
            last = nil
        }
    }

    /// Record ids seen in a submission, and the line each was first seen on.
    struct DuplicateIDs {
        private var firstLine: [String: Int64] = [:]
        private(set) var reported = 0
        private(set) var lastID = ""

        /// Lines checked so far: a resumed submission reads the file again from its start, and
        /// those lines are neither parsed again (on a million-line file that was most of each
        /// resume) nor counted as repeats of themselves.
        private(set) var checkedThrough: Int64 = 0
        /// Lines whose id repeated an earlier line's, with that line and the id.
        private var repeats: [Int64: (first: Int64, id: String)] = [:]

        /// The line that used this record's id first, if another did.
        mutating func check(_ record: SubmittedRecord) -> Int64? {
            guard record.line > checkedThrough else {
                // Checked before: the same answer (a resend must be rejected as the first send was).
                guard let repeat_ = repeats[record.line] else { return nil }
                lastID = repeat_.id
                return repeat_.first
            }
            checkedThrough = record.line
            guard case .json(let bytes) = record.body, let id = (try? JSONParser.parse(bytes))?["id"]?.stringValue else { return nil }
            if let first = firstLine[id] {
                reported += 1
                lastID = id
                repeats[record.line] = (first, id)
                return first
            }
            firstLine[id] = record.line
            return nil
        }
    }

    /// Reads past the lines the batch already holds, recomputing their digest: a resumed
    /// submission must be the same input, never another file spliced onto the first. Returns
    /// the records read past the stored ones, to be sent first.
    private mutating func skipStored(_ stored: StoredInput) throws -> [SubmittedRecord] {
        var digest = InputDigest.empty
        guard stored.lastLine > 0 else { return [] }
        while true {
            let records = try file.next(chunkSize, maxBytes: chunkBytes)
            if records.isEmpty { break }
            var rest: [SubmittedRecord] = []
            for record in records {
                if record.line <= stored.lastLine {
                    _ = duplicates.check(record)
                    let part = record.digestPart
                    digest.append(line: record.line, kind: part.kind, bytes: part.bytes)
                } else {
                    rest.append(record)
                }
            }
            if !rest.isEmpty || digest.lastLine >= stored.lastLine {
                guard digest.lastLine == stored.lastLine, digest.sha256 == stored.sha256 else { break }
                return rest
            }
        }
        guard digest.lastLine == stored.lastLine, digest.sha256 == stored.sha256 else {
            throw CoordinatorClient.Refused(message: """
                batch \(batchID) holds other input than \(file.path): its lines 1–\(stored.lastLine) are not this file's, \
                so it cannot be resumed from it. Resume it with the file it was started with, or submit \(file.path) \
                without --batch-id as a new batch
                """)
        }
        return []
    }

    /// Polls the coordinator until every accepted record is assessed or failed. Rides through a
    /// coordinator restart or failover: an unanswered poll is repeated until `patience` seconds
    /// have passed without any answer.
    func wait(showProgress: Bool, patience: Double = 300) throws -> BatchProgress {
        var display = ProgressDisplay(label: "assessing")
        var first = true
        var lastAnswer = Date()
        var outage = OutageLine()
        while true {
            let reply: ClientReply
            do {
                reply = try client.request(.status(batchID: batchID))
                lastAnswer = Date()
                outage.over()
            } catch let error as CoordinatorClient.Unreachable {
                if Date().timeIntervalSince(lastAnswer) > patience { throw error }
                if error.replaced {
                    outage.say("the coordinator restarted or a standby took over (or it listens again after losing its database); asking it")
                } else {
                    outage.say("\(error); waiting for it (it may be restarting)")
                    Thread.sleep(forTimeInterval: 0.5)
                }
                continue
            } catch let error as CoordinatorClient.Refused where error.retryable {
                if Date().timeIntervalSince(lastAnswer) > patience { throw error }
                outage.say("the coordinator's database is unavailable; waiting for it (nothing is lost)")
                Thread.sleep(forTimeInterval: 1)
                continue
            }
            guard case .status(let p) = reply else { throw CoordinatorClient.Refused(message: "unexpected reply to STATUS: \(reply)") }
            if first { display.baseline = p.done + p.failed; first = false }
            if showProgress {
                display.update(done: p.done + p.failed, total: p.accepted, detail: p.failed > 0 ? "failed \(p.failed)" : "",
                               force: p.state == .completed)
            }
            if p.state == .completed || p.state == .cancelled {
                if showProgress { display.finish() }
                return p
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }
}
