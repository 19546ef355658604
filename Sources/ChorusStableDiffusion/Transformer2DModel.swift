import ChorusTensor
import Foundation

/// diffusers' `Attention` as the UNet uses it: to_q/to_k/to_v without bias, to_out.0 with bias;
/// keys and values come from `context` (cross-attention) or from x itself (self-attention).
package struct CrossAttention: Sendable {
    package let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    package let heads: Int

    package init(_ w: WeightSource, _ prefix: String, heads: Int, bias: Bool = false) throws {
        toQ = try Linear(w, "\(prefix).to_q", bias: bias)
        toK = try Linear(w, "\(prefix).to_k", bias: bias)
        toV = try Linear(w, "\(prefix).to_v", bias: bias)
        toOut = try Linear(w, "\(prefix).to_out.0")
        self.heads = heads
    }

    /// x [B, T, C], context [B, S, D] → [B, T, C].
    package func callAsFunction(_ x: Tensor, context: Tensor? = nil) -> Tensor {
        let source = context ?? x
        return toOut(Attention.attend(query: toQ(x), key: toK(source), value: toV(source), heads: heads))
    }
}

/// `FeedForward` with GEGLU: net.0.proj doubles the width into (hidden, gate); out = net.2(hidden · GELU(gate)).
package struct FeedForward: Sendable {
    package let proj: Linear, out: Linear

    package init(_ w: WeightSource, _ prefix: String) throws {
        proj = try Linear(w, "\(prefix).net.0.proj")
        out = try Linear(w, "\(prefix).net.2")
    }

    package func callAsFunction(_ x: Tensor) -> Tensor {
        let both = proj(x)
        let inner = both.shape[both.rank - 1] / 2
        let rows = both.count / (2 * inner)
        var gated = [Float](repeating: 0, count: rows * inner)
        both.storage.withUnsafeBufferPointer { p in
            gated.withUnsafeMutableBufferPointer { g in
                Parallel.chunks(rows, minimumPerChunk: max(1, 8192 / inner)) { range in
                    for r in range {
                        let hidden = p.baseAddress! + r * 2 * inner, gate = hidden + inner
                        for i in 0..<inner {
                            let v = gate[i]
                            g[r * inner + i] = hidden[i] * 0.5 * v * (1 + fastErf(v * 0.70710678118654752))
                        }
                    }
                }
            }
        }
        var shape = both.shape
        shape[shape.count - 1] = inner
        return out(Tensor(shape: shape, storage: gated))
    }
}

/// `BasicTransformerBlock`: self-attention, cross-attention on the text, GEGLU feed-forward, each
/// behind a LayerNorm and added back.
package struct BasicTransformerBlock: Sendable {
    package let norm1: LayerNorm, attn1: CrossAttention
    package let norm2: LayerNorm, attn2: CrossAttention
    package let norm3: LayerNorm, ff: FeedForward

    package init(_ w: WeightSource, _ prefix: String, heads: Int) throws {
        norm1 = try LayerNorm(w, "\(prefix).norm1")
        attn1 = try CrossAttention(w, "\(prefix).attn1", heads: heads)
        norm2 = try LayerNorm(w, "\(prefix).norm2")
        attn2 = try CrossAttention(w, "\(prefix).attn2", heads: heads)
        norm3 = try LayerNorm(w, "\(prefix).norm3")
        ff = try FeedForward(w, "\(prefix).ff")
    }

    package func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        var h = x + attn1(norm1(x))
        h = h + attn2(norm2(h), context: context)
        return h + ff(norm3(h))
    }
}

/// `Transformer2DModel` over a feature map: GroupNorm, proj_in (1×1 conv, or a linear after flattening
/// when `use_linear_projection`), transformer blocks over the H·W positions, proj_out, plus the input.
package struct Transformer2DModel: Sendable {
    package enum Projection: Sendable {
        case conv(Conv2d), linear(Linear)
    }

    package let norm: GroupNorm
    package let projIn: Projection, projOut: Projection
    package let blocks: [BasicTransformerBlock]

    package init(_ w: WeightSource, _ prefix: String, heads: Int, layers: Int, groups: Int, linearProjection: Bool) throws {
        norm = try GroupNorm(w, "\(prefix).norm", groups: groups, eps: 1e-6)
        func projection(_ name: String) throws -> Projection {
            linearProjection ? .linear(try Linear(w, "\(prefix).\(name)")) : .conv(try Conv2d(w, "\(prefix).\(name)"))
        }
        projIn = try projection("proj_in")
        projOut = try projection("proj_out")
        blocks = try (0..<layers).map { try BasicTransformerBlock(w, "\(prefix).transformer_blocks.\($0)", heads: heads) }
    }

    package func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var h = norm(x)
        // [B, C, H, W] ⇄ [B, H·W, C]: the blocks attend over positions.
        func positions(_ t: Tensor) -> Tensor { t.reshaped([batch, t.shape[1], height * width]).permuted([0, 2, 1]) }
        func map(_ t: Tensor) -> Tensor { t.permuted([0, 2, 1]).reshaped([batch, t.shape[2], height, width]) }
        switch projIn {
        case .conv(let conv): h = positions(conv(h))
        case .linear(let linear): h = linear(positions(h))
        }
        for block in blocks { h = block(h, context: context) }
        switch projOut {
        case .conv(let conv): h = conv(map(h))
        case .linear(let linear): h = map(linear(h))
        }
        precondition(h.shape[1] == channels, "Transformer2DModel: proj_out gives \(h.shape[1]) channels for \(channels)")
        return x + h
    }
}
