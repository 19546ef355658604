import CBLAS

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
        var out = [Float](repeating: 0, count: m * n)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(n), Int32(k), 1, pa.baseAddress, Int32(a.shape[1]),
                                pb.baseAddress, Int32(b.shape[1]), 0, pc.baseAddress, Int32(n))
                }
            }
        }
        return Tensor(shape: [m, n], storage: out)
    }

    /// PyTorch's Linear: x [.., in] · weightᵀ [out, in] + bias [out].
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        let inFeatures = weight.shape[1]
        precondition(x.shape.last == inFeatures, "linear expects inputs of width \(inFeatures), got \(x.shape)")
        let rows = x.count / inFeatures
        var y = matmul(x.reshaped([rows, inFeatures]), weight, transposeB: true)
        if let bias {
            let outFeatures = weight.shape[0]
            y.storage.withUnsafeMutableBufferPointer { out in
                bias.storage.withUnsafeBufferPointer { b in
                    for r in 0..<rows {
                        for c in 0..<outFeatures { out[r * outFeatures + c] += b[c] }
                    }
                }
            }
        }
        return y.reshaped(Array(x.shape.dropLast()) + [weight.shape[0]])
    }
}
