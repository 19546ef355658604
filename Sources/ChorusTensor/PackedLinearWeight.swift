import CKernels
import Dispatch
import Foundation

/// A linear layer's weight (and bias) laid out once for `chorus_gemm` (Sources/CKernels/packed_gemm.c):
/// panels of 32 output columns for AVX-512's 12 × 32 register block, 16 for AVX2's 6 × 16. sgemm repacks
/// the whole weight on every call; this packs only the activations, a few hundred rows, per product.
///
/// Models opt in per layer (`Linear.packedForProducts()`), where the products have many rows: CLIP's
/// towers. The layer then keeps only this copy.
public struct PackedLinearWeight: Sendable {
    let storage: [Float]
    let outFeatures: Int, inFeatures: Int
    let hasBias: Bool
    /// Output columns per panel: 32 or 16.
    let columns: Int32

    /// The panel width models pack for: 32 where the CPU has AVX-512, else nil (sgemm). The AVX2 block
    /// (16) is correct but not faster than OpenBLAS's Haswell sgemm (0.87–1.13× at CLIP's shapes, one core),
    /// so only `CHORUS_PACKED_GEMM=avx2` chooses it, for A/B runs; `=0` keeps sgemm everywhere.
    public static let best: Int32? = {
        switch ProcessInfo.processInfo.environment["CHORUS_PACKED_GEMM"] {
        case "0": return nil
        case "avx2": return chorus_gemm_columns_supported(16) != 0 ? 16 : nil
        default: return chorus_gemm_columns_best() == 32 ? 32 : nil
        }
    }()

    /// nil where the kernel does not run on this CPU, or for a `columns` it does not run.
    public init?(weight: Tensor, bias: Tensor?, columns: Int32? = PackedLinearWeight.best) {
        guard let columns, chorus_gemm_columns_supported(columns) != 0, weight.rank == 2, weight.shape[0] > 0, weight.shape[1] > 0 else { return nil }
        let (n, k) = (weight.shape[0], weight.shape[1])
        precondition(bias == nil || bias!.count == n, "linear bias has \(bias!.count) values for \(n) outputs")
        var packed = [Float].unset(chorus_gemm_packed_count(Int32(n), Int32(k), columns))
        let status = weight.storage.withUnsafeBufferPointer { w in
            packed.withUnsafeMutableBufferPointer { p in
                if let bias {
                    return bias.storage.withUnsafeBufferPointer {
                        chorus_gemm_pack(w.baseAddress!, $0.baseAddress!, Int32(n), Int32(k), columns, p.baseAddress!)
                    }
                }
                return chorus_gemm_pack(w.baseAddress!, nil, Int32(n), Int32(k), columns, p.baseAddress!)
            }
        }
        guard status == 0 else { return nil }
        (storage, outFeatures, inFeatures, hasBias, self.columns) = (packed, n, k, bias != nil, columns)
    }

    /// The float32 weight [out, in] back out of the panels.
    public func unpackedWeight() -> Tensor {
        let nr = Int(columns)
        var weight = [Float].unset(outFeatures * inFeatures)
        for o in 0..<outFeatures {
            let (panel, column) = (o / nr, o % nr)
            for i in 0..<inFeatures { weight[o * inFeatures + i] = storage[(panel * inFeatures + i) * nr + column] }
        }
        return Tensor(shape: [outFeatures, inFeatures], storage: weight)
    }

    /// x [.., in] · weightᵀ + bias → [.., out].
    public func apply(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inFeatures, "linear expects inputs of width \(inFeatures), got \(x.shape)")
        let (m, n, k) = (x.count / inFeatures, outFeatures, inFeatures)
        let mr = Int(chorus_gemm_block_rows(columns)), rowBlocks = (m + mr - 1) / mr
        let panels = (n + Int(columns) - 1) / Int(columns)
        var packedX = [Float].unset(chorus_gemm_packed_x_count(Int32(m), Int32(k), columns))
        var out = [Float].unset(m * n)
        // Two jobs or more a core: cores here are not equally fast from one moment to the next.
        let jobs = BLAS.pieces(work: m * n * k) <= 1 ? 1 : min(panels, 4 * Parallel.cores)
        x.storage.withUnsafeBufferPointer { px in
            packedX.withUnsafeMutableBufferPointer { ppx in
                let (source, target) = (px.baseAddress!, ppx.baseAddress!)
                let packJobs = jobs > 1 ? min(rowBlocks, Parallel.cores) : 1
                let step = (rowBlocks + packJobs - 1) / packJobs
                func pack(_ j: Int) {
                    let (b0, b1) = (j * step, min(rowBlocks, (j + 1) * step))
                    guard b0 < b1 else { return }
                    let status = chorus_gemm_pack_x(source, k, Int32(m), Int32(k), columns, Int32(b0), Int32(b1), target)
                    precondition(status == 0, "chorus_gemm_pack_x rejected [\(m), \(k)]")
                }
                if packJobs == 1 { pack(0) } else { Parallel.perform(iterations: packJobs, pack) }
            }
        }
        packedX.withUnsafeBufferPointer { ppx in
            storage.withUnsafeBufferPointer { pw in
                out.withUnsafeMutableBufferPointer { po in
                    let args = chorus_gemm_args(packed_x: ppx.baseAddress!, packed: pw.baseAddress!, nr: columns,
                                                m: Int32(m), n: Int32(n), k: Int32(k), has_bias: hasBias ? 1 : 0,
                                                accumulate: 0, y: po.baseAddress!, ldy: n)
                    let step = (panels + jobs - 1) / jobs
                    withUnsafePointer(to: args) { g in
                        func run(_ j: Int) {
                            let (p0, p1) = (j * step, min(panels, (j + 1) * step))
                            guard p0 < p1 else { return }
                            precondition(chorus_gemm(g, Int32(p0), Int32(p1)) == 0, "chorus_gemm rejected [\(m), \(k)] · [\(k), \(n)]")
                        }
                        if jobs == 1 { run(0) } else { Parallel.perform(iterations: jobs, run) }
                    }
                }
            }
        }
        return Tensor(shape: Array(x.shape.dropLast()) + [n], storage: out)
    }
}
