import ChorusTensor

/// diffusers' `ResnetBlock2D` (the UNet's with a time embedding, the VAE's without):
/// h = conv2(SiLU(norm2(conv1(SiLU(norm1(x))) + time_emb_proj(SiLU(temb))))); out = shortcut(x) + h.
package struct ResnetBlock2D: Sendable {
    package let norm1: GroupNorm, conv1: Conv2d
    package let timeEmbProj: Linear?
    package let norm2: GroupNorm, conv2: Conv2d
    package let convShortcut: Conv2d?

    package init(_ w: WeightSource, _ prefix: String, groups: Int, eps: Float, timeEmbedding: Bool) throws {
        norm1 = try GroupNorm(w, "\(prefix).norm1", groups: groups, eps: eps)
        conv1 = try Conv2d(w, "\(prefix).conv1", padding: 1)
        timeEmbProj = timeEmbedding ? try Linear(w, "\(prefix).time_emb_proj") : nil
        norm2 = try GroupNorm(w, "\(prefix).norm2", groups: groups, eps: eps)
        conv2 = try Conv2d(w, "\(prefix).conv2", padding: 1)
        convShortcut = w.names.contains("\(prefix).conv_shortcut.weight") ? try Conv2d(w, "\(prefix).conv_shortcut") : nil
    }

    package var outChannels: Int { conv2.outChannels }

    /// `temb` is the UNet's time embedding after its SiLU, [B, D]; nil in the VAE.
    package func callAsFunction(_ x: Tensor, temb: Tensor?) -> Tensor {
        var h = conv1(norm1(x, activation: .silu))
        if let timeEmbProj, let temb {
            let t = timeEmbProj(temb)
            h = h + t.reshaped([t.shape[0], t.shape[1], 1, 1])
        }
        return conv2(norm2(h, activation: .silu), residual: convShortcut.map { $0(x) } ?? x)
    }
}

/// `Downsample2D` with a convolution: stride 2, padding 1 in the UNet; the VAE's padding 0 pads one
/// zero row and column at the bottom and right first.
package struct Downsample2D: Sendable {
    package let conv: Conv2d

    package init(_ w: WeightSource, _ prefix: String, padding: Int) throws {
        conv = try Conv2d(w, "\(prefix).conv", stride: 2, padding: padding)
    }

    package func callAsFunction(_ x: Tensor) -> Tensor {
        conv(conv.padding == 0 ? x.zeroPadded(bottom: 1, right: 1) : x)
    }
}

/// `Upsample2D`: nearest ×2 (or to the size of the skip it meets, for latents not divisible by the
/// UNet's total stride), then a 3×3 convolution.
package struct Upsample2D: Sendable {
    package let conv: Conv2d

    package init(_ w: WeightSource, _ prefix: String) throws {
        conv = try Conv2d(w, "\(prefix).conv", padding: 1)
    }

    package func callAsFunction(_ x: Tensor, size: (height: Int, width: Int)? = nil) -> Tensor {
        let (height, width) = size ?? (x.shape[2] * 2, x.shape[3] * 2)
        return conv(x.upsampleNearest(height: height, width: width))
    }
}
