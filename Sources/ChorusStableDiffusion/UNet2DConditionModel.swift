import ChorusTensor
import Foundation

/// diffusers' `UNet2DConditionModel` as Stable Diffusion 1.x and 2.x use it: a sinusoidal time
/// embedding, down blocks that keep their outputs as skips, a cross-attention mid block, up blocks that
/// concatenate the skips back in. Types and weight names follow the checkpoint
/// (`down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k`).
package struct UNet2DConditionModel: Sendable {
    /// `CrossAttnDownBlock2D` (with attentions) or `DownBlock2D` (without).
    package struct DownBlock: Sendable {
        package let resnets: [ResnetBlock2D]
        package let attentions: [Transformer2DModel]
        package let downsampler: Downsample2D?
    }

    /// `CrossAttnUpBlock2D` or `UpBlock2D`: each resnet takes the running features and one skip.
    package struct UpBlock: Sendable {
        package let resnets: [ResnetBlock2D]
        package let attentions: [Transformer2DModel]
        package let upsampler: Upsample2D?
    }

    /// `UNetMidBlock2DCrossAttn`: resnet, attention, resnet.
    package struct MidBlock: Sendable {
        package let resnets: [ResnetBlock2D]
        package let attentions: [Transformer2DModel]
    }

    package let config: UNet2DConditionConfig
    package let convIn: Conv2d
    package let timeEmbedding: (linear1: Linear, linear2: Linear)
    package let downBlocks: [DownBlock]
    package let midBlock: MidBlock?
    package let upBlocks: [UpBlock]
    package let convNormOut: GroupNorm, convOut: Conv2d

    package init(_ w: WeightSource, config: UNet2DConditionConfig, file: String) throws {
        try config.validate(file: file)
        self.config = config
        let groups = config.normNumGroups, eps = config.normEps, blocks = config.blockOutChannels.count
        func resnet(_ prefix: String) throws -> ResnetBlock2D {
            try ResnetBlock2D(w, prefix, groups: groups, eps: eps, timeEmbedding: true)
        }
        func transformer(_ prefix: String, block: Int) throws -> Transformer2DModel {
            try Transformer2DModel(w, prefix, heads: config.heads(block: block),
                                   layers: config.transformerLayersPerBlock[block, of: blocks], groups: groups,
                                   linearProjection: config.useLinearProjection)
        }
        convIn = try Conv2d(w, "conv_in", padding: 1)
        timeEmbedding = (try Linear(w, "time_embedding.linear_1"), try Linear(w, "time_embedding.linear_2"))
        downBlocks = try config.downBlockTypes.enumerated().map { i, type in
            let p = "down_blocks.\(i)"
            let layers = 0..<config.layersPerBlock
            return DownBlock(
                resnets: try layers.map { try resnet("\(p).resnets.\($0)") },
                attentions: type.hasPrefix("CrossAttn") ? try layers.map { try transformer("\(p).attentions.\($0)", block: i) } : [],
                downsampler: i < blocks - 1 ? try Downsample2D(w, "\(p).downsamplers.0", padding: config.downsamplePadding) : nil)
        }
        midBlock = config.midBlockType == nil ? nil : MidBlock(
            resnets: [try resnet("mid_block.resnets.0"), try resnet("mid_block.resnets.1")],
            attentions: [try transformer("mid_block.attentions.0", block: blocks - 1)])
        upBlocks = try config.upBlockTypes.enumerated().map { i, type in
            let p = "up_blocks.\(i)"
            let layers = 0...config.layersPerBlock
            let block = blocks - 1 - i  // heads and layers are listed in down-block order
            return UpBlock(
                resnets: try layers.map { try resnet("\(p).resnets.\($0)") },
                attentions: type.hasPrefix("CrossAttn") ? try layers.map { try transformer("\(p).attentions.\($0)", block: block) } : [],
                upsampler: i < blocks - 1 ? try Upsample2D(w, "\(p).upsamplers.0") : nil)
        }
        convNormOut = try GroupNorm(w, "conv_norm_out", groups: groups, eps: eps)
        convOut = try Conv2d(w, "conv_out", padding: 1)
    }

    /// diffusers' `get_timestep_embedding` in float32 as PyTorch computes it: frequencies
    /// exp(−ln(10000)·i/(half − freq_shift)), [sin, cos] of t·f, swapped to [cos, sin] by flip_sin_to_cos.
    package func timestepFeatures(_ timesteps: [Float]) -> Tensor {
        let dim = config.blockOutChannels[0], half = dim / 2
        let frequencies = (0..<half).map { i -> Float in
            let exponent = -Float(log(10000.0)) * Float(i) / Float(half - config.freqShift)
            return Float(exp(Double(exponent)))
        }
        var out = [Float](repeating: 0, count: timesteps.count * dim)
        for (b, t) in timesteps.enumerated() {
            for i in 0..<half {
                let angle = Double(t * frequencies[i])
                let (sine, cosine) = (Float(sin(angle)), Float(cos(angle)))
                out[b * dim + i] = config.flipSinToCos ? cosine : sine
                out[b * dim + half + i] = config.flipSinToCos ? sine : cosine
            }
        }
        return Tensor(shape: [timesteps.count, dim], storage: out)
    }

    /// sample [B, C, H, W] at `timestep` (one for the whole batch), text states [B, 77, D] → the
    /// model's prediction [B, C_out, H, W] (noise, v or sample, as the scheduler's prediction_type says).
    package func callAsFunction(_ sample: Tensor, timestep: Float, context: Tensor) -> Tensor {
        let batch = sample.shape[0]
        var temb = timeEmbedding.linear1(timestepFeatures(Array(repeating: timestep, count: batch)))
        temb.apply(.silu)
        temb = timeEmbedding.linear2(temb)
        temb.apply(.silu)  // every resnet's time_emb_proj takes SiLU(temb); do it once here

        var h = convIn(config.centerInputSample ? sample * 2 + -1 : sample)
        var skips = [h]
        for block in downBlocks {
            for (j, resnet) in block.resnets.enumerated() {
                h = resnet(h, temb: temb)
                if !block.attentions.isEmpty { h = block.attentions[j](h, context: context) }
                skips.append(h)
            }
            if let down = block.downsampler {
                h = down(h)
                skips.append(h)
            }
        }
        if let mid = midBlock {
            h = mid.resnets[0](h, temb: temb)
            h = mid.attentions[0](h, context: context)
            h = mid.resnets[1](h, temb: temb)
        }
        for block in upBlocks {
            for (j, resnet) in block.resnets.enumerated() {
                h = resnet(Tensor.concatenate([h, skips.removeLast()], axis: 1), temb: temb)
                if !block.attentions.isEmpty { h = block.attentions[j](h, context: context) }
            }
            if let up = block.upsampler, let next = skips.last {
                h = up(h, size: (next.shape[2], next.shape[3]))
            }
        }
        return convOut(convNormOut(h, activation: .silu))
    }
}
