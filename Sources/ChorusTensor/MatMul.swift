import CBLAS
import Dispatch

/// C = A·B (or with either side transposed) through OpenBLAS sgemm; transposes are passed to BLAS,
/// never materialised.
public enum MatMul {
    /// a: [m, k] (or [k, m] when transposeA), b: [k, n] (or [n, k] when transposeB) → [m, n].
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2, "matmul takes 2-D tensors, got \(a.shape) and \(b.shape)")
        let m = transposeA ? a.shape[1] : a.shape[0]
        let k = transposeA ? a.shape[0] : a.shape[1]
        let kb = transposeB ? b.shape[1] : b.shape[0]
        let n = transposeB ? b.shape[0] : b.shape[1]
        precondition(k == kb, "inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let vector = m == 1 && !transposeA
        var out: [Float] = vector ? [Float](repeating: 0, count: n) : .unset(m * n)
        if vector {
            // One row (a decoder step): a matrix-vector product, which BLAS does faster than a 1-row sgemm.
            a.storage.withUnsafeBufferPointer { pa in
                b.storage.withUnsafeBufferPointer { pb in
                    out.withUnsafeMutableBufferPointer { pc in
                        BLAS.sgemv(transA: !transposeB, rows: b.shape[0], columns: b.shape[1], a: pb.baseAddress!, lda: b.shape[1],
                                   x: pa.baseAddress!, y: pc.baseAddress!)
                    }
                }
            }
            return Tensor(shape: [1, n], storage: out)
        }
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    BLAS.sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, a: pa.baseAddress!, lda: a.shape[1],
                               b: pb.baseAddress!, ldb: b.shape[1], c: pc.baseAddress!, ldc: n)
                }
            }
        }
        return Tensor(shape: [m, n], storage: out)
    }

    /// PyTorch's Linear: x [.., in] · weightᵀ [out, in] + bias [out]. The bias is written into the output
    /// first and sgemm adds the product to it (beta = 1), so the bias costs no extra pass.
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        precondition(x.shape.last == inFeatures, "linear expects inputs of width \(inFeatures), got \(x.shape)")
        let rows = x.count / inFeatures
        var out: [Float]
        if let bias {
            precondition(bias.count == outFeatures, "linear bias has \(bias.count) values for \(outFeatures) outputs")
            out = [Float](unsafeUninitializedCapacity: rows * outFeatures) { buffer, count in
                bias.storage.withUnsafeBufferPointer { b in
                    for r in 0..<rows {
                        (buffer.baseAddress! + r * outFeatures).initialize(from: b.baseAddress!, count: outFeatures)
                    }
                }
                count = rows * outFeatures
            }
        } else {
            out = [Float](repeating: 0, count: rows * outFeatures)
        }
        x.storage.withUnsafeBufferPointer { px in
            weight.storage.withUnsafeBufferPointer { pw in
                out.withUnsafeMutableBufferPointer { po in
                    if rows == 1 {
                        BLAS.sgemv(rows: outFeatures, columns: inFeatures, a: pw.baseAddress!, lda: inFeatures, x: px.baseAddress!,
                                   beta: bias == nil ? 0 : 1, y: po.baseAddress!)
                        return
                    }
                    BLAS.sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: px.baseAddress!, lda: inFeatures,
                               b: pw.baseAddress!, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: po.baseAddress!, ldc: outFeatures)
                }
            }
        }
        return Tensor(shape: Array(x.shape.dropLast()) + [outFeatures], storage: out)
    }

    /// a [B, m, k] · b [B, k, n] (either side may be transposed per batch entry) → [B, m, n].
    /// A b of rank 2 is shared by every batch entry.
    public static func batchedMatmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(a.rank == 3 && (b.rank == 3 || b.rank == 2), "batchedMatmul takes [B, m, k] and [B, k, n] or [k, n]")
        let batch = a.shape[0]
        let shared = b.rank == 2
        precondition(shared || b.shape[0] == batch, "batch sizes differ: \(a.shape) and \(b.shape)")
        let (ar, ac) = (a.shape[1], a.shape[2])
        let (br, bc) = shared ? (b.shape[0], b.shape[1]) : (b.shape[1], b.shape[2])
        let (m, k) = transposeA ? (ac, ar) : (ar, ac)
        let (kb, n) = transposeB ? (bc, br) : (br, bc)
        precondition(k == kb, "inner dimensions differ: \(a.shape) · \(b.shape)")
        var out = [Float].unset(batch * m * n)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    func product(_ i: Int, split: Bool) {
                        let (a, b, c) = (pa.baseAddress! + i * ar * ac, pb.baseAddress! + (shared ? 0 : i * br * bc), pc.baseAddress! + i * m * n)
                        if split {
                            BLAS.sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, a: a, lda: ac, b: b, ldb: bc, c: c, ldc: n)
                        } else {
                            BLAS.serialSgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, a: a, lda: ac, b: b, ldb: bc, c: c, ldc: n)
                        }
                    }
                    // Many entries: one per core, each on one thread. Few: each product split across the cores.
                    if batch >= Parallel.cores && BLAS.pieces(work: batch * m * n * k) > 1 {
                        Parallel.perform(iterations: batch) { product($0, split: false) }
                    } else {
                        for i in 0..<batch { product(i, split: true) }
                    }
                }
            }
        }
        return Tensor(shape: [batch, m, n], storage: out)
    }
}
