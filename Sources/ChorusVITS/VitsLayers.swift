import ChorusTensor
import Foundation

/// A Conv1d as the checkpoint stores it: a plain `weight`, or weight-normed as
/// `parametrizations.weight.original0/1` (g, v) or `weight_g/weight_v`, folded here into w = g·v/‖v‖.
package struct VitsConv1d: Sendable {
    package let weight: Tensor
    package let bias: Tensor?
    package var padding = 0
    package var dilation = 1
    package var groups = 1
    /// The weight laid out for the direct conv1d kernels, where they run (every call reuses it).
    package let packed: PackedConv1dWeight?

    package init(_ w: WeightSource, _ prefix: String, bias: Bool = true, padding: Int = 0, dilation: Int = 1, groups: Int = 1) throws {
        weight = try Self.weight(w, prefix)
        self.bias = bias ? try w.tensor("\(prefix).bias") : nil
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        packed = groups == 1 && weight.shape[2] > 1 && weight.shape[0] > 4 && weight.shape[1] <= Convolution.directChannels
            ? PackedConv1dWeight(weight) : nil
    }

    /// The folded weight of `prefix`, whichever way it is stored.
    package static func weight(_ w: WeightSource, _ prefix: String) throws -> Tensor {
        if let plain = try? w.tensor("\(prefix).weight") { return plain }
        let g: Tensor, v: Tensor
        if let original = try? w.tensor("\(prefix).parametrizations.weight.original1") {
            v = original
            g = try w.tensor("\(prefix).parametrizations.weight.original0")
        } else {
            v = try w.tensor("\(prefix).weight_v")
            g = try w.tensor("\(prefix).weight_g")
        }
        // Norm over every dimension but the first, as torch's weight_norm(dim=0).
        let rows = v.shape[0], width = v.count / rows
        var out = v.storage
        for r in 0..<rows {
            var sum: Float = 0
            for i in 0..<width { sum += v.storage[r * width + i] * v.storage[r * width + i] }
            let scale = g.storage[r] / sum.squareRoot()
            for i in 0..<width { out[r * width + i] *= scale }
        }
        return Tensor(shape: v.shape, storage: out)
    }

    /// leaky(x) convolved, plus `residual` when given (stride-1, ungrouped convolutions only).
    package func fused(_ x: Tensor, inputLeakySlope: Float? = nil, residual: Tensor? = nil) -> Tensor {
        precondition(groups == 1, "fused convolutions are ungrouped")
        return Convolution.conv1dFused(x, weight: weight, bias: bias, padding: padding, dilation: dilation,
                                       inputLeakySlope: inputLeakySlope, residual: residual, packed: packed)
    }

    /// x [1, Cin, T] → [1, Cout, T'].
    package func callAsFunction(_ x: Tensor) -> Tensor {
        if weight.shape[2] == 1 && groups == 1 {
            // A pointwise convolution is one matrix product over time.
            let w2 = weight.reshaped([weight.shape[0], weight.shape[1]])
            var y = MatMul.matmul(w2, x.reshaped([x.shape[1], x.shape[2]]))
            if let bias {
                let t = x.shape[2]
                y.storage.withUnsafeMutableBufferPointer { p in
                    for c in 0..<weight.shape[0] { let b = bias.storage[c]; for i in 0..<t { p[c * t + i] += b } }
                }
            }
            return y.reshaped([1, weight.shape[0], x.shape[2]])
        }
        if groups == 1 {
            return Convolution.conv1dFused(x, weight: weight, bias: bias, padding: padding, dilation: dilation, packed: packed)
        }
        return Convolution.conv1d(x, weight: weight, bias: bias, padding: padding, dilation: dilation, groups: groups)
    }
}

/// nn.LayerNorm applied over the channels of a channels-first [1, C, T] tensor.
package struct ChannelLayerNorm: Sendable {
    package let weight: Tensor, bias: Tensor
    package let eps: Float

    package init(_ w: WeightSource, _ prefix: String, eps: Float = 1e-5) throws {
        weight = try w.tensor("\(prefix).weight")
        bias = try w.tensor("\(prefix).bias")
        self.eps = eps
    }

    package func callAsFunction(_ x: Tensor) -> Tensor {
        let (c, t) = (x.shape[1], x.shape[2])
        var out = x.storage
        for i in 0..<t {
            var mean: Float = 0
            for ch in 0..<c { mean += out[ch * t + i] }
            mean /= Float(c)
            var variance: Float = 0
            for ch in 0..<c { let d = out[ch * t + i] - mean; variance += d * d }
            let inv = 1 / (variance / Float(c) + eps).squareRoot()
            for ch in 0..<c { out[ch * t + i] = (out[ch * t + i] - mean) * inv * weight.storage[ch] + bias.storage[ch] }
        }
        return Tensor(shape: x.shape, storage: out)
    }
}

extension Tensor {
    /// self += other, elementwise, same shape (no new buffer).
    package mutating func add(_ other: Tensor) {
        precondition(shape == other.shape)
        storage.withUnsafeMutableBufferPointer { a in
            other.storage.withUnsafeBufferPointer { b in for i in 0..<a.count { a[i] += b[i] } }
        }
    }

    package mutating func scale(by factor: Float) {
        storage.withUnsafeMutableBufferPointer { a in for i in 0..<a.count { a[i] *= factor } }
    }

    /// Channels [range] of a [1, C, T] tensor.
    package func channels(_ range: Range<Int>) -> Tensor {
        slice(axis: 1, range)
    }

    /// torch.flip(x, [1]) of a [1, C, T] tensor.
    package func flippedChannels() -> Tensor {
        let (c, t) = (shape[1], shape[2])
        var out = [Float](repeating: 0, count: count)
        for ch in 0..<c {
            for i in 0..<t { out[(c - 1 - ch) * t + i] = storage[ch * t + i] }
        }
        return Tensor(shape: shape, storage: out)
    }
}
