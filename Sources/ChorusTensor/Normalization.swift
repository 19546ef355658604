import CKernels
import Foundation

/// Norms over rows: every kernel treats the tensor as rows of its last dimension (or of one group),
/// and splits the rows across cores.
extension Tensor {
    /// LayerNorm over the last dimension: (x - mean) / sqrt(var + eps) · weight + bias.
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let width = shape.last ?? 1
        var out = self
        normalizeRows(&out, width: width, eps: eps, subtractMean: true, weight: weight, bias: bias)
        return out
    }

    /// RMSNorm (Llama): x / sqrt(mean(x²) + eps) · weight.
    public func rmsNorm(weight: Tensor, eps: Float = 1e-6) -> Tensor {
        var out = self
        normalizeRows(&out, width: shape.last ?? 1, eps: eps, subtractMean: false, weight: weight, bias: nil)
        return out
    }

    /// GroupNorm over [N, C, *spatial]: statistics per (sample, group), then per-channel affine.
    /// With groups == channels this is InstanceNorm. `scaleShift` [N, 2C] (scale, then shift) applies
    /// y·(1 + scale) + shift per sample and channel after it, as guided diffusion's scale-shift norm does,
    /// and `activation` follows; both fold into the one pass that writes the output.
    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5, scaleShift: Tensor? = nil,
                          activation: Activation? = nil) -> Tensor {
        precondition(rank >= 2 && shape[1] % groups == 0, "group norm: \(shape[1]) channels do not split into \(groups) groups")
        let channels = shape[1]
        precondition(scaleShift.map { $0.shape == [shape[0], 2 * channels] } ?? true,
                     "group norm: scale and shift \(scaleShift!.shape) for \(shape[0]) samples of \(channels) channels")
        let spatial = shape.dropFirst(2).reduce(1, *)
        let perGroup = channels / groups, groupWidth = perGroup * spatial
        let w = weight?.storage ?? [Float](repeating: 1, count: channels), b = bias?.storage ?? [Float](repeating: 0, count: channels)
        let film = scaleShift?.storage
        var out = [Float].unset(count)
        storage.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                let (source, target) = (input.baseAddress!, output.baseAddress!)
                // Statistics per (sample, group); the channel's affine (and scale-shift) folds into one scale and shift.
                Parallel.chunks(shape[0] * groups, minimumPerChunk: max(1, 16_384 / max(groupWidth, 1))) { range in
                    for row in range {
                        let p = source + row * groupWidth, q = target + row * groupWidth
                        let mean = Float(RowReduction.sum(p, groupWidth) / Double(groupWidth))
                        let variance = RowReduction.sum(p, groupWidth, minus: mean, squared: true) / Double(groupWidth)
                        let inv = Float(1 / (variance + Double(eps)).squareRoot())
                        let sample = row / groups
                        for j in 0..<perGroup {
                            let c = (row % groups) * perGroup + j
                            var scale = inv * w[c], shift = b[c] - mean * scale
                            if let film {
                                let s = 1 + film[sample * 2 * channels + c]
                                (scale, shift) = (scale * s, shift * s + film[sample * 2 * channels + channels + c])
                            }
                            let (from, to) = (p + j * spatial, q + j * spatial)
                            for i in 0..<spatial { to[i] = from[i] * scale + shift }
                            activation?.apply(to, count: spatial)
                        }
                    }
                }
            }
        }
        return Tensor(shape: shape, storage: out)
    }
}

/// Normalises each row of `width` in place, mean first and then the variance around it (two passes keep
/// precision where one-pass E[x²] − E[x]² cancels); the sums run in RowReduction's float lanes and Double blocks.
private func normalizeRows(_ x: inout Tensor, width: Int, eps: Float, subtractMean: Bool, weight: Tensor?, bias: Tensor?) {
    let rows = x.count / width
    let ones = weight == nil ? [Float](repeating: 1, count: width) : []
    let zeros = bias == nil ? [Float](repeating: 0, count: width) : []
    let w = weight?.storage ?? ones, b = bias?.storage ?? zeros
    x.storage.withUnsafeMutableBufferPointer { buffer in
        let base = buffer.baseAddress!
        let perChunk = max(1, 16_384 / max(width, 1))
        w.withUnsafeBufferPointer { w in
            b.withUnsafeBufferPointer { b in
                let (w, b) = (w.baseAddress!, b.baseAddress!)
                Parallel.chunks(rows, minimumPerChunk: perChunk) { range in
                    for row in range {
                        let p = base + row * width
                        let mean = subtractMean ? Float(RowReduction.sum(p, width) / Double(width)) : 0
                        let variance = RowReduction.sum(p, width, minus: mean, squared: true) / Double(width)
                        let inv = Float(1 / (variance + Double(eps)).squareRoot())
                        for i in 0..<width { p[i] = (p[i] - mean) * inv * w[i] + b[i] }
                    }
                }
            }
        }
    }
}

extension Tensor {
    /// Softmax over the last dimension, in place, numerically stable.
    public mutating func softmaxLastDimension() {
        let width = shape.last ?? 1
        let rows = count / max(width, 1)
        storage.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            Parallel.chunks(rows, minimumPerChunk: max(1, 16_384 / max(width, 1))) { range in
                for row in range { softmaxRow(base + row * width, width) }
            }
        }
    }
}

/// Softmax of one row in place; a fully masked row (all −∞) becomes zeros: it attends to nothing.
@inline(__always)
func softmaxRow(_ p: UnsafeMutablePointer<Float>, _ width: Int) {
    let top = RowReduction.max(p, width)
    if top == -.infinity {
        p.update(repeating: 0, count: width)
        return
    }
    var total: Float = 0
    if VectorMath.avx512, chorus_exp_shifted(p, width, top, &total) == 0 {
        let inv = 1 / total
        for i in 0..<width { p[i] *= inv }
        return
    }
    for i in 0..<width { p[i] = fastExp(p[i] - top) }
    let inv = Float(1 / RowReduction.sum(p, width))
    for i in 0..<width { p[i] *= inv }
}

/// log softmax of one row: x − (max + log Σ e^(x − max)). A row without a finite entry comes back unchanged.
/// Whisper takes it over its 51 864-token vocabulary at every decoder step, where libm's exp one value at a
/// time was 4% of a greedy decode; the sum runs in Double where the 16-lane kernel does not apply.
public func logSoftmaxRow(_ row: [Float]) -> [Float] {
    guard !row.isEmpty else { return row }
    return row.withUnsafeBufferPointer { src in
        let n = src.count
        let top = RowReduction.max(src.baseAddress!, n)
        guard top.isFinite else { return row }
        var out = [Float].unset(n)
        out.withUnsafeMutableBufferPointer { dst in
            let d = dst.baseAddress!
            d.update(from: src.baseAddress!, count: n)
            var total: Float = 0
            if !(VectorMath.avx512 && chorus_exp_shifted(d, n, top, &total) == 0) {
                var sum: Double = 0
                for i in 0..<n where src[i] > -.infinity { sum += Double(fastExp(src[i] - top)) }
                total = Float(sum)
            }
            let shift = top + log(total)
            for i in 0..<n { d[i] = src[i] - shift }
        }
        return out
    }
}

/// The largest of row[range] (−∞ for an empty range), eight lanes at a time: a decoder's timestamp rule
/// takes it over 50 k text tokens at every step, where `ArraySlice.max()` ran one element at a time.
public func maximum(of row: [Float], in range: Range<Int>) -> Float {
    precondition(range.lowerBound >= 0 && range.upperBound <= row.count, "maximum: \(range) of \(row.count)")
    return row.withUnsafeBufferPointer { RowReduction.max($0.baseAddress! + range.lowerBound, range.count) }
}

/// The index of the first largest entry of a non-empty row (greedy decoding's argmax).
public func argmaxRow(_ row: [Float]) -> Int {
    precondition(!row.isEmpty, "argmax of an empty row")
    let top = maximum(of: row, in: 0..<row.count)
    // A row of NaNs has no largest entry: the first one stands in, as `max(by:)` would answer.
    return row.firstIndex(of: top) ?? 0
}
