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
    var chunkSize = 1_000
    var maxRejectionsShown = 20
    /// Whether the coordinator has answered OPEN once: only then is silence a restart to wait out.
    private(set) var opened = false
    /// Called with each chunk's number when its acknowledgement arrives (the bench times them).
    var onAcknowledged: ((UInt64) -> Void)?

    struct Outcome {
        var accepted: Int64 = 0
        var rejected: Int64 = 0
        var progress: BatchProgress?
    }

    /// Sends the whole file. If the coordinator stops answering (killed, restarting, a standby
    /// taking over), opens the batch again and resumes after the last chunk it stored, until
    /// `patience` seconds pass without an answer.
    mutating func send(showProgress: Bool, patience: Double = 300) throws -> Outcome {
        var silentSince: Date?
        var resumes = 0
        var resuming = false
        while true {
            do {
                return try sendOnce(showProgress: showProgress)
            } catch let error as CoordinatorClient.Unreachable {
                // A coordinator that never answered is a wrong address, not a restart.
                guard opened else { throw error }
                resuming = true
                let since = silentSince ?? Date()
                silentSince = since
                if Date().timeIntervalSince(since) > patience { throw error }
                printError("no answer from the coordinator while sending; resuming when it is back")
                Thread.sleep(forTimeInterval: 1)
                file = try BatchFile(path: file.path, format: file.format)
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
                file = try BatchFile(path: file.path, format: file.format)
            }
        }
    }

    private mutating func sendOnce(showProgress: Bool) throws -> Outcome {
        try client.send(.open(batchID: batchID, name: name, packs: packs, source: (file.path as NSString).lastPathComponent))
        var reply = try client.receive()
        // After a resume, acknowledgements of chunks sent before may still arrive: skip them.
        while case .acknowledged = reply { reply = try client.receive() }
        guard case .opened(_, let acknowledged, let window) = reply else {
            throw CoordinatorClient.Refused(message: "unexpected reply to OPEN: \(reply)")
        }
        opened = true
        var outcome = Outcome()
        var number: UInt64 = 0
        // Resume: skip the chunks the coordinator already stored.
        while number < acknowledged {
            let skipped = try file.next(chunkSize)
            if skipped.isEmpty { break }
            number += 1
        }
        if acknowledged > 0 { printError("resuming batch \(batchID) after chunk \(acknowledged)") }
        var inFlight = 0
        var outstanding = Set<UInt64>()
        var finished = false
        var shown = 0
        var display = ProgressDisplay(label: "submitting")
        var sentRecords: Int64 = 0
        while !finished || inFlight > 0 {
            while !finished && inFlight < Int(window) {
                let records = try file.next(chunkSize)
                if records.isEmpty { finished = true; break }
                number += 1
                sentRecords += Int64(records.count)
                try client.send(.chunk(batchID: batchID, number: number, records: records))
                outstanding.insert(number)
                inFlight += 1
            }
            guard inFlight > 0 else { break }
            let reply = try client.receive()
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
                let total = finished ? sentRecords : file.estimatedTotal(recordsSoFar: sentRecords)
                display.update(done: outcome.accepted + outcome.rejected, total: max(total, outcome.accepted + outcome.rejected),
                               detail: "accepted \(outcome.accepted), rejected \(outcome.rejected)")
            }
        }
        if showProgress { display.finish() }
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

    /// Polls the coordinator until every accepted record is assessed or failed. Rides through a
    /// coordinator restart or failover: an unanswered poll is repeated until `patience` seconds
    /// have passed without any answer.
    func wait(showProgress: Bool, patience: Double = 300) throws -> BatchProgress {
        var display = ProgressDisplay(label: "assessing")
        var first = true
        var lastAnswer = Date()
        while true {
            let reply: ClientReply
            do {
                reply = try client.request(.status(batchID: batchID), timeoutSeconds: 5)
                lastAnswer = Date()
            } catch let error as CoordinatorClient.Unreachable {
                if Date().timeIntervalSince(lastAnswer) > patience { throw error }
                printError("no answer from the coordinator; retrying (it may be restarting)")
                continue
            } catch let error as CoordinatorClient.Refused where error.retryable {
                if Date().timeIntervalSince(lastAnswer) > patience { throw error }
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
