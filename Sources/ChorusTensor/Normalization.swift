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
    /// With groups == channels this is InstanceNorm.
    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(rank >= 2 && shape[1] % groups == 0, "group norm: \(shape[1]) channels do not split into \(groups) groups")
        let channels = shape[1]
        let spatial = shape.dropFirst(2).reduce(1, *)
        let groupWidth = channels / groups * spatial
        var out = self
        normalizeRows(&out, width: groupWidth, eps: eps, subtractMean: true, weight: nil, bias: nil)
        if weight != nil || bias != nil {
            let w = weight?.storage, b = bias?.storage
            out.storage.withUnsafeMutableBufferPointer { o in
                for n in 0..<shape[0] {
                    for c in 0..<channels {
                        let scale = w?[c] ?? 1, shift = b?[c] ?? 0
                        let base = (n * channels + c) * spatial
                        for i in base..<(base + spatial) { o[i] = o[i] * scale + shift }
                    }
                }
            }
        }
        return out
    }
}

/// Normalises each row of `width` in place; mean and variance are accumulated in Double so long rows
/// (group norm over 64×64 maps) keep float32 precision.
private func normalizeRows(_ x: inout Tensor, width: Int, eps: Float, subtractMean: Bool, weight: Tensor?, bias: Tensor?) {
    let rows = x.count / width
    let w = weight?.storage, b = bias?.storage
    x.storage.withUnsafeMutableBufferPointer { buffer in
        let base = buffer.baseAddress!
        let perChunk = max(1, 16_384 / max(width, 1))
        Parallel.chunks(rows, minimumPerChunk: perChunk) { range in
            for row in range {
                let p = base + row * width
                var mean = 0.0
                if subtractMean {
                    for i in 0..<width { mean += Double(p[i]) }
                    mean /= Double(width)
                }
                var variance = 0.0
                for i in 0..<width {
                    let d = Double(p[i]) - mean
                    variance += d * d
                }
                variance /= Double(width)
                let inv = Float(1 / (variance + Double(eps)).squareRoot())
                let m = Float(mean)
                for i in 0..<width {
                    var v = (p[i] - m) * inv
                    if let w { v *= w[i] }
                    if let b { v += b[i] }
                    p[i] = v
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
                for row in range {
                    let p = base + row * width
                    var top = -Float.infinity
                    for i in 0..<width { top = max(top, p[i]) }
                    if top == -.infinity {
                        for i in 0..<width { p[i] = 0 }  // a fully masked row attends to nothing
                        continue
                    }
                    var sum: Float = 0
                    for i in 0..<width { p[i] = fastExp(p[i] - top) }
                    for i in 0..<width { sum += p[i] }
                    let inv = 1 / sum
                    for i in 0..<width { p[i] *= inv }
                }
            }
        }
    }
}
