import CKernels
import Dispatch

/// Attention for a few queries over many keys: a decoder step's cross-attention over 1500 audio frames,
/// one query row per beam. The step is bound by reading the keys and values (6 MB a layer for Whisper
/// base), so they are read once, row by row in memory order, for every head and query at once. A
/// per-head matrix-vector product would walk each head's 64-column strip of every row instead, and read
/// the keys once per beam.
enum FewQueryAttention {
    /// Up to this many queries read the keys once for all; beyond, blocked sgemm is faster.
    static let maximumQueries = 8
    /// Fewer keys than this stay on the per-head path: its overhead is small and the keys are in cache.
    static let minimumKeys = 256

    /// Whether the two passes run in C (Sources/CKernels/few_query_attention.c: AVX-512, blocks of 16 keys
    /// kept in L1 while every query and head passes over them, 16 scores reduced at once).
    /// `CHORUS_CPU=avx2` keeps the Swift loops.
    static let vectorKernel = VectorMath.avx512

    static func applies(tq: Int, tk: Int, mask: Tensor?, causal: Bool) -> Bool {
        tq <= maximumQueries && tk >= minimumKeys && mask == nil && !causal
    }

    /// q [tq, width] and out [tq, width] of one batch entry; k and v [tk, keyWidth] rows of `keyWidth`;
    /// head h reads key head h / group.
    static func attend(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                       tq: Int, tk: Int, width: Int, keyWidth: Int, heads: Int, group: Int, alpha: Float) {
        let d = width / heads
        let rows = tq * heads  // one row of scores per (query, head)
        // Bound by memory, not arithmetic: split once the keys are a quarter megabyte.
        let workers = min(Parallel.cores, max(1, tk * keyWidth / 65_536))
        let span = (tk + workers - 1) / workers
        var scores = [Float].unset(rows * tk)
        // Each worker sums its keys' share of the output; the shares are added at the end.
        var partial = [Float](repeating: 0, count: workers * tq * width)
        scores.withUnsafeMutableBufferPointer { sp in
            let s = sp.baseAddress!
            let args = chorus_few_query_args(q: q, k: k, v: v, scores: s, tq: Int32(tq), heads: Int32(heads), head_width: Int32(d),
                                             group: Int32(group), width: width, key_width: keyWidth, tk: tk, alpha: alpha)
            let vectorKernel = Self.vectorKernel && chorus_few_query_supported(Int32(d)) != 0
            // The workers read the arguments through one pointer (a `var` passed inout would be an
            // overlapping access from several threads).
            let argsPointer = UnsafeMutablePointer<chorus_few_query_args>.allocate(capacity: 1)
            argsPointer.initialize(to: args)
            defer { argsPointer.deallocate() }
            Parallel.perform(iterations: workers) { worker in
                let keys = (worker * span)..<min(tk, (worker + 1) * span)
                if vectorKernel && chorus_few_query_scores(argsPointer, keys.lowerBound, keys.upperBound) == 0 { return }
                for j in keys {
                    let key = k + j * keyWidth
                    for query in 0..<tq {
                        for h in 0..<heads {
                            s[(query * heads + h) * tk + j] = alpha * dot(q + query * width + h * d, key + (h / group) * d, d)
                        }
                    }
                }
            }
            Parallel.chunks(rows, minimumPerChunk: max(1, 16_384 / tk)) { range in
                for r in range { softmaxRow(s + r * tk, tk) }
            }
            partial.withUnsafeMutableBufferPointer { pp in
                let p = pp.baseAddress!
                Parallel.perform(iterations: workers) { worker in
                    let sum = p + worker * tq * width
                    let keys = (worker * span)..<min(tk, (worker + 1) * span)
                    if vectorKernel && chorus_few_query_values(argsPointer, keys.lowerBound, keys.upperBound, sum) == 0 { return }
                    for j in keys {
                        let value = v + j * keyWidth
                        for query in 0..<tq {
                            for h in 0..<heads {
                                addScaled(value + (h / group) * d, s[(query * heads + h) * tk + j], into: sum + query * width + h * d, d)
                            }
                        }
                    }
                }
            }
        }
        partial.withUnsafeBufferPointer { p in
            for i in 0..<(tq * width) {
                var total: Float = 0
                for worker in 0..<workers { total += p[worker * tq * width + i] }
                out[i] = total
            }
        }
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        let (ar, br) = (UnsafeRawPointer(a), UnsafeRawPointer(b))
        var lanes = SIMD8<Float>(repeating: 0), more = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 16 <= n {
            lanes += ar.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * br.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            more += ar.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self) * br.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self)
            i += 16
        }
        var sum = (lanes + more).sum()
        while i < n { sum += a[i] * b[i]; i += 1 }
        return sum
    }

    /// y += alpha · x over n values.
    @inline(__always)
    static func addScaled(_ x: UnsafePointer<Float>, _ alpha: Float, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        let (xr, yr) = (UnsafeRawPointer(x), UnsafeMutableRawPointer(y))
        let a = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n {
            let sum = yr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) + a * xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            yr.storeBytes(of: sum, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }
}
