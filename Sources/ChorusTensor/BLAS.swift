import CBLAS
import Foundation

/// Every matrix product in Chorus goes through here. OpenBLAS runs single-threaded, and large products are
/// split across the cores by `Parallel`, the same pool that runs the elementwise work.
///
/// Why not OpenBLAS's own threads: after each call its workers spin in `sched_yield` for a while, waiting
/// for the next one. A model alternates sgemm with softmax, norms and activations on the dispatch pool, so
/// those spinning workers took the cores from the pool: 12–30% of all samples in Whisper, VITS and the
/// terrain UNet. Splitting here also lets a convolution or an attention layer divide its whole job (im2col
/// and sgemm, or scores, softmax and values) rather than only the sgemm inside it.
///
/// `CHORUS_BLAS_THREADS=openblas` keeps OpenBLAS's own threading (and this file's calls unsplit), for
/// comparison.
public enum BLAS {
    /// True when OpenBLAS runs one thread and Chorus splits the work.
    public static let splits: Bool = {
        _ = FreedBuffers.kept  // the compute layer's other process-wide setting, made at the same first use
        if ProcessInfo.processInfo.environment["CHORUS_BLAS_THREADS"] == "openblas" { return false }
        openblas_set_num_threads(1)
        return true
    }()

    /// Multiply-adds below which a product stays on one thread: dispatching costs a few microseconds.
    static let splitThreshold = 1 << 20

    /// How many pieces a job of `work` multiply-adds should be cut into.
    @inline(__always)
    static func pieces(work: Int) -> Int {
        guard splits, work >= splitThreshold else { return 1 }
        return min(Parallel.cores, max(1, work / splitThreshold))
    }

    /// Row-major C = alpha · op(A) · op(B) + beta · C, with op(A) [m, k] and op(B) [k, n], split along the
    /// longer side of C so every piece still makes a well-shaped product.
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
        let parts = pieces(work: m * n * k)
        if parts <= 1 || (m < 32 && n < 32) {
            serialSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: c, ldc: ldc)
            return
        }
        if m >= n {
            let step = (m + parts - 1) / parts
            Parallel.perform(iterations: parts) { p in
                let first = p * step, rows = min(m, first + step) - first
                guard rows > 0 else { return }
                serialSgemm(transA: transA, transB: transB, m: rows, n: n, k: k, alpha: alpha,
                            a: transA ? a + first : a + first * lda, lda: lda, b: b, ldb: ldb,
                            beta: beta, c: c + first * ldc, ldc: ldc)
            }
        } else {
            // Column pieces in multiples of 16 keep each piece's packed panels whole.
            let step = ((n + parts - 1) / parts + 15) / 16 * 16
            Parallel.perform(iterations: parts) { p in
                let first = p * step, columns = min(n, first + step) - first
                guard columns > 0 else { return }
                serialSgemm(transA: transA, transB: transB, m: m, n: columns, k: k, alpha: alpha, a: a, lda: lda,
                            b: transB ? b + first * ldb : b + first, ldb: ldb,
                            beta: beta, c: c + first, ldc: ldc)
            }
        }
    }

    /// One OpenBLAS call on the calling thread: for callers that already run inside a parallel loop.
    @inline(__always)
    public static func serialSgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                                   a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                                   c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = splits
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y = alpha · A · x + beta · y for row-major A [rows, columns] (or Aᵀ · x when `transA`), split over
    /// the output.
    public static func sgemv(transA: Bool = false, rows: Int, columns: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        let outputs = transA ? columns : rows
        let parts = outputs >= 64 ? pieces(work: rows * columns * 4) : 1
        if parts <= 1 {
            serialSgemv(transA: transA, rows: rows, columns: columns, alpha: alpha, a: a, lda: lda, x: x, beta: beta, y: y)
            return
        }
        let step = ((outputs + parts - 1) / parts + 15) / 16 * 16
        Parallel.perform(iterations: parts) { p in
            let first = p * step, count = min(outputs, first + step) - first
            guard count > 0 else { return }
            if transA {
                serialSgemv(transA: true, rows: rows, columns: count, alpha: alpha, a: a + first, lda: lda, x: x, beta: beta, y: y + first)
            } else {
                serialSgemv(transA: false, rows: count, columns: columns, alpha: alpha, a: a + first * lda, lda: lda, x: x,
                            beta: beta, y: y + first)
            }
        }
    }

    @inline(__always)
    public static func serialSgemv(transA: Bool = false, rows: Int, columns: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                                   x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        _ = splits
        cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, Int32(rows), Int32(columns), alpha, a, Int32(lda),
                    x, 1, beta, y, 1)
    }
}
