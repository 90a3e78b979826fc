import Identifiers
import Testing
@testable import Worker

/// Which waiting bundle a worker scores and writes next: small batches do not wait behind big ones.
@Suite struct WorkerSchedulingTests {
    @Test func aSmallBatchGoesBeforeABigOnesQueuedBundles() {
        let big = BatchID(), small = BatchID()
        // Four bundles of a million-record batch, then the only one of a 10-record batch.
        let waiting = [(big, 256), (big, 256), (big, 256), (big, 256), (small, 10)]
        #expect(WorkerService.fairest(waiting.map { (batch: $0.0, jobs: $0.1) }) == 4)
    }

    @Test func withOneBatchTheOrderIsKept() {
        let only = BatchID()
        #expect(WorkerService.fairest([(only, 256), (only, 10), (only, 256)].map { (batch: $0.0, jobs: $0.1) }) == 0)
    }

    @Test func theBatchWithLessWaitingGoesFirstAndTiesGoToTheOldest() {
        let a = BatchID(), b = BatchID()
        #expect(WorkerService.fairest([(a, 256), (a, 256), (b, 256)].map { (batch: $0.0, jobs: $0.1) }) == 2)
        #expect(WorkerService.fairest([(a, 256), (b, 256)].map { (batch: $0.0, jobs: $0.1) }) == 0)
        // Taken one at a time, every bundle is taken: what waits is bounded by the credit.
        var queue = [(a, 256), (b, 10), (a, 256), (b, 256), (a, 100)].map { (batch: $0.0, jobs: $0.1) }
        var order: [Int] = []
        while !queue.isEmpty { order.append(queue.remove(at: WorkerService.fairest(queue)).jobs) }
        #expect(order == [10, 256, 256, 256, 100])
    }
}
