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
        if m == 1 && !transposeA {
            // One row (a decoder step): a matrix-vector product, which BLAS does faster than a 1-row sgemm.
            a.storage.withUnsafeBufferPointer { pa in
                b.storage.withUnsafeBufferPointer { pb in
                    out.withUnsafeMutableBufferPointer { pc in
                        cblas_sgemv(CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans, Int32(b.shape[0]), Int32(b.shape[1]),
                                    1, pb.baseAddress, Int32(b.shape[1]), pa.baseAddress, 1, 0, pc.baseAddress, 1)
                    }
                }
            }
            return Tensor(shape: [1, n], storage: out)
        }
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
                        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), 1, pw.baseAddress, Int32(inFeatures),
                                    px.baseAddress, 1, bias == nil ? 0 : 1, po.baseAddress, 1)
                        return
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(inFeatures),
                                1, px.baseAddress, Int32(inFeatures), pw.baseAddress, Int32(inFeatures),
                                bias == nil ? 0 : 1, po.baseAddress, Int32(outFeatures))
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
        var out = [Float](repeating: 0, count: batch * m * n)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    for i in 0..<batch {
                        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                                    Int32(m), Int32(n), Int32(k), 1, pa.baseAddress! + i * ar * ac, Int32(ac),
                                    pb.baseAddress! + (shared ? 0 : i * br * bc), Int32(bc), 0, pc.baseAddress! + i * m * n, Int32(n))
                    }
                }
            }
        }
        return Tensor(shape: [batch, m, n], storage: out)
    }
}
