import ChorusServiceKit
import ChorusTensor
import ChorusWire
import Synchronization
import Testing
@testable import VisionService

/// Batch sizes the stand-in model saw.
final class BatchSizes: Sendable {
    private let sizes = Mutex<[Int]>([])
    func record(_ n: Int) { sizes.withLock { $0.append(n) } }
    var all: [Int] { sizes.withLock { $0 } }
}

@Suite struct EmbeddingBatcherTests {
    /// A stand-in model: row i of the output is [input, batch size], so callers can see their batch.
    static func batcher(window: Duration, maxBatch: Int, maxWaiting: Int = 1000, sizes: BatchSizes) -> EmbeddingBatcher<Float> {
        EmbeddingBatcher(window: window, maxBatch: maxBatch, maxWaiting: maxWaiting,
                         limiter: ConcurrencyLimiter(maxConcurrency: 2, maxQueue: 64), compute: ComputeQueue()) { inputs in
            sizes.record(inputs.count)
            return Tensor(shape: [inputs.count, 2], storage: inputs.flatMap { [$0, Float(inputs.count)] })
        }
    }

    @Test func concurrentCallsShareBatchesAndGetTheirOwnRows() async throws {
        let sizes = BatchSizes()
        let batcher = Self.batcher(window: .milliseconds(200), maxBatch: 8, sizes: sizes)
        let results = try await withThrowingTaskGroup(of: (Int, Tensor).self) { group in
            for i in 0..<16 { group.addTask { (i, try await batcher.embed([Float(i)])) } }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        for (i, rows) in results {
            #expect(rows.shape == [1, 2] && rows.storage[0] == Float(i))
        }
        // 16 single calls with a long window fill two full batches of 8.
        #expect(sizes.all == [8, 8])
    }

    @Test func aLoneCallRunsWhenTheWindowCloses() async throws {
        let sizes = BatchSizes()
        let batcher = Self.batcher(window: .milliseconds(5), maxBatch: 8, sizes: sizes)
        let rows = try await batcher.embed([1, 2, 3])
        #expect(rows.storage == [1, 3, 2, 3, 3, 3])
        // Larger than a batch: split into full batches, no waiting.
        let big = try await batcher.embed((0..<20).map(Float.init))
        #expect(big.shape == [20, 2] && big.storage[38] == 19)
        #expect(sizes.all == [3, 8, 8, 4])
    }

    @Test func aFullQueueRefusesWithResourceExhausted() async throws {
        let sizes = BatchSizes()
        // The window is far longer than the test: a batch starts only when the queue holds maxBatch
        // inputs, never because time passed, so no step below depends on the clock. (It is not
        // endless so that a regression fails when the window closes instead of hanging the run.)
        let batcher = Self.batcher(window: .seconds(60), maxBatch: 4, maxWaiting: 4, sizes: sizes)
        // Two calls that do not fit in the queue together (3 + 2 inputs > 4). The batcher exposes no
        // count of waiting inputs, so which call reaches the actor first cannot be observed from here;
        // it does not need to be: whichever arrives first waits, and the other is refused at once,
        // which is the only call that can finish before the batch is filled.
        let calls: [[Float]] = [[1, 2, 3], [4, 5]]
        try await withThrowingTaskGroup(of: (Int, Tensor?, WireStatus?).self) { group in
            for (index, inputs) in calls.enumerated() {
                group.addTask {
                    do {
                        let rows = try await batcher.embed(inputs)
                        return (index, rows, nil)
                    } catch let status as WireStatus {
                        return (index, nil, status)
                    }
                }
            }
            guard let first = try await group.next() else {
                Issue.record("no call finished")
                return
            }
            let (refused, refusedRows, status) = first
            #expect(refusedRows == nil, "the queue took more than its limit")
            #expect(status?.code == .resourceExhausted, "\(String(describing: status))")
            let accepted = 1 - refused
            // Filling the queue to maxBatch starts the batch at once: the waiting call gets its rows,
            // computed in one batch of 4 with the filler's (each row is [input, batch size]).
            let fillerInputs = [Float](repeating: 9, count: 4 - calls[accepted].count)
            let filler = try await batcher.embed(fillerInputs)
            let expectedFiller: [Float] = fillerInputs.flatMap { [$0, 4] }
            #expect(filler.storage == expectedFiller)
            guard let second = try await group.next() else {
                Issue.record("the waiting call never finished")
                return
            }
            let (index, rows, error) = second
            let expectedRows: [Float] = calls[accepted].flatMap { [$0, 4] }
            #expect(index == accepted && error == nil, "\(String(describing: error))")
            #expect(rows?.shape == [calls[accepted].count, 2])
            #expect(rows?.storage == expectedRows)
        }
        #expect(sizes.all == [4])
    }
}
