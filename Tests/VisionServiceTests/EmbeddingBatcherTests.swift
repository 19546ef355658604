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
        let batcher = Self.batcher(window: .milliseconds(300), maxBatch: 100, maxWaiting: 4, sizes: sizes)
        async let first = batcher.embed([1, 2, 3])
        try await Task.sleep(for: .milliseconds(50))
        do {
            _ = try await batcher.embed([4, 5])
            Issue.record("the queue took more than its limit")
        } catch let status as WireStatus {
            #expect(status.code == .resourceExhausted)
        }
        #expect(try await first.shape == [3, 2])
    }
}
