import CKernels

/// A weight matrix kept in half precision, for products that read the whole matrix for a few rows of
/// input: a decoder's vocabulary projection reads 80 MB a token in float32 (Whisper tiny), and at the
/// ≈ 12 GB/s of these machines that read is the step. Made only from weights whose every value is a
/// half (a float16 checkpoint widened on load), so the product is the float32 one up to summation order.
public struct HalfMatrix: Sendable {
    public let rows: Int
    public let columns: Int
    let storage: [Float16]

    /// Whether this build widens halves in vector registers. Debug builds of `dot` do it one runtime call per
    /// value, which is slower than reading float32; release builds for an F16C CPU (scripts/build) do not,
    /// and neither does the C kernel (always optimised), so debug builds on AVX-512 CPUs, the test suite's,
    /// run the products as release builds do.
    public static var worthUsing: Bool {
        #if DEBUG
        return vectorKernel
        #else
        return true
        #endif
    }

    /// Inputs of up to this many rows read the halves; beyond, the product is compute-bound and sgemm on
    /// float32 is faster.
    public static let rowsWorthIt = 8

    /// `weight` [rows, columns], or nil when some value is not exactly a half.
    public init?(exactly weight: Tensor) {
        guard weight.rank == 2 else { return nil }
        var halves = [Float16](repeating: 0, count: weight.count)
        for (i, v) in weight.storage.enumerated() {
            let h = Float16(v)
            guard Float(h) == v else { return nil }
            halves[i] = h
        }
        (rows, columns, storage) = (weight.shape[0], weight.shape[1], halves)
    }

    /// x [B, columns] → x·Wᵀ [B, rows], as Linear without bias computes it. Each weight row is read
    /// from memory once for all B inputs (beam search).
    public func timesTransposed(_ x: Tensor) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == columns, "HalfMatrix: input \(x.shape) for a [\(rows), \(columns)] matrix")
        let batch = x.shape[0], columns = columns, rows = rows
        var out = [Float](repeating: 0, count: batch * rows)
        storage.withUnsafeBufferPointer { w in
            x.storage.withUnsafeBufferPointer { xs in
                out.withUnsafeMutableBufferPointer { o in
                    let (w, xs, o) = (w.baseAddress!, xs.baseAddress!, o.baseAddress!)
                    let vectorKernel = Self.vectorKernel
                    Parallel.chunks(rows, minimumPerChunk: max(16, Self.splitHalves / max(columns, 1))) { range in
                        if vectorKernel {
                            let done = UnsafeRawPointer(w).withMemoryRebound(to: UInt16.self, capacity: rows * columns) {
                                chorus_half_gemv($0, rows, columns, xs, Int32(batch), range.lowerBound, range.upperBound, o)
                            }
                            if done == 0 { return }
                        }
                        for r in range {
                            for b in 0..<batch {
                                o[b * rows + r] = Self.dot(w + r * columns, xs + b * columns, columns)
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [batch, rows], storage: out)
    }

    /// Whether products go through the C kernel (AVX-512: four weight rows at a time, 16 lanes, every input
    /// row per loaded weight) instead of `dot`. `CHORUS_CPU=avx2` keeps the Swift loop.
    static let vectorKernel = VectorMath.avx512 && chorus_half_gemv_supported() != 0

    /// Products of at least this many halves (128 KB) are split over the cores. At 2¹⁸ Whisper base's
    /// 512 × 512 projections (six of a decoder layer's eight) ran on one core while the other waited:
    /// base greedy over 30 s, four pairs in turns, decoded in 0.44–0.47 s against 0.48–0.51 s.
    static let splitHalves = 1 << 16

    @inline(__always)
    static func dot(_ w: UnsafePointer<Float16>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let (wr, xr) = (UnsafeRawPointer(w), UnsafeRawPointer(x))
        // Two accumulators, so consecutive multiply-adds do not wait on each other.
        var lanes = SIMD8<Float>(repeating: 0), more = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 16 <= n {
            let h = wr.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<Float16>.self)
            let wide = SIMD16<Float>(h), v = xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            lanes += wide.lowHalf * v.lowHalf
            more += wide.highHalf * v.highHalf
            i += 16
        }
        while i + 8 <= n {
            let h = wr.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<Float16>.self)
            lanes += SIMD8<Float>(h) * xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        var sum = (lanes + more).sum()
        while i < n { sum += Float(w[i]) * x[i]; i += 1 }
        return sum
    }
}
