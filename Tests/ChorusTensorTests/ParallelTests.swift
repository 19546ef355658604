import ChorusTensor
import Dispatch
import Synchronization
import Testing

/// `Parallel.perform` runs on the polling pool when it is free and through Dispatch when it is not:
/// either way every iteration runs exactly once, and the call returns only after all of them.
@Suite struct ParallelTests {
    /// Counts how often each iteration ran, from any thread.
    final class Tally: @unchecked Sendable {
        let counts: Mutex<[Int]>
        init(_ n: Int) { counts = Mutex([Int](repeating: 0, count: n)) }
        func hit(_ i: Int) { counts.withLock { $0[i] += 1 } }
        var all: [Int] { counts.withLock { $0 } }
    }

    @Test func everyIterationRunsOnceAndIsDoneOnReturn() {
        for count in [0, 1, 2, 3, 17, 1000] {
            for _ in 0..<200 {
                let tally = Tally(count)
                Parallel.perform(iterations: count) { tally.hit($0) }
                #expect(tally.all == [Int](repeating: 1, count: count), "\(count) iterations")
            }
        }
    }

    @Test func callsFromManyThreadsAtOnceAndNestedCallsAllComplete() {
        let results = Tally(16)
        DispatchQueue.concurrentPerform(iterations: 16) { caller in
            for _ in 0..<100 {
                let tally = Tally(8)
                Parallel.perform(iterations: 8) { i in
                    // A nested call finds the pool busy and goes to Dispatch (or runs inline).
                    Parallel.perform(iterations: 2) { _ in tally.hit(i) }
                }
                if tally.all == [Int](repeating: 2, count: 8) { results.hit(caller) }
            }
        }
        #expect(results.all == [Int](repeating: 100, count: 16))
    }

    @Test func chunksCoverTheRangeOnceAfterThePoolHasSlept() async throws {
        // Past the polling time the helpers sleep; a job must wake them or run without them.
        try await Task.sleep(for: .milliseconds(5))
        var out = [Int](repeating: 0, count: 100_000)
        out.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            Parallel.chunks(100_000, minimumPerChunk: 1000) { range in for i in range { base[i] += i } }
        }
        #expect(out == Array(0..<100_000))
    }
}
