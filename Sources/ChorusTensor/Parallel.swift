import Dispatch
import Foundation

/// Splits elementwise and per-row work across the cores. Matrix products are split by `BLAS`, on this
/// same pool (OpenBLAS itself runs one thread).
public enum Parallel {
    public static let cores = ProcessInfo.processInfo.activeProcessorCount

    /// body(0..<iterations) over the cores: on the polling helpers of `SpinningPool` when it is free,
    /// else through Dispatch.
    public static func perform(iterations: Int, _ body: (Int) -> Void) {
        if iterations <= 1 {
            if iterations == 1 { body(0) }
            return
        }
        if let pool = SpinningPool.shared, pool.perform(iterations: iterations, body) { return }
        DispatchQueue.concurrentPerform(iterations: iterations, execute: body)
    }

    /// Runs `body(range)` over 0..<count in contiguous chunks; small jobs stay on the calling thread.
    @inlinable
    public static func chunks(_ count: Int, minimumPerChunk: Int = 32_768, _ body: (Range<Int>) -> Void) {
        let pieces = min(cores, max(1, count / minimumPerChunk))
        if pieces <= 1 {
            body(0..<count)
            return
        }
        let size = (count + pieces - 1) / pieces
        perform(iterations: pieces) { piece in
            let start = piece * size
            body(start..<min(count, start + size))
        }
    }
}
