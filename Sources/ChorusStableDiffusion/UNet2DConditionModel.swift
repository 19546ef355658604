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
        let blocks = config.blockOutChannels.count
        convIn = try Conv2d(w, "conv_in", padding: 1)
        timeEmbedding = (try Linear(w, "time_embedding.linear_1"), try Linear(w, "time_embedding.linear_2"))
        (downBlocks, midBlock) = try Self.encoderBlocks(w, config: config)
        upBlocks = try config.upBlockTypes.enumerated().map { i, type in
            let p = "up_blocks.\(i)"
            let layers = 0...config.layersPerBlock
            let block = blocks - 1 - i  // heads and layers are listed in down-block order
            return UpBlock(
                resnets: try layers.map { try Self.resnet(w, "\(p).resnets.\($0)", config: config) },
                attentions: type.hasPrefix("CrossAttn") ? try layers.map { try Self.transformer(w, "\(p).attentions.\($0)", block: block, config: config) } : [],
                upsampler: i < blocks - 1 ? try Upsample2D(w, "\(p).upsamplers.0") : nil)
        }
        convNormOut = try GroupNorm(w, "conv_norm_out", groups: config.normNumGroups, eps: config.normEps)
        convOut = try Conv2d(w, "conv_out", padding: 1)
    }

    static func resnet(_ w: WeightSource, _ prefix: String, config: UNet2DConditionConfig) throws -> ResnetBlock2D {
        try ResnetBlock2D(w, prefix, groups: config.normNumGroups, eps: config.normEps, timeEmbedding: true)
    }

    static func transformer(_ w: WeightSource, _ prefix: String, block: Int, config: UNet2DConditionConfig) throws -> Transformer2DModel {
        try Transformer2DModel(w, prefix, heads: config.heads(block: block),
                               layers: config.transformerLayersPerBlock[block, of: config.blockOutChannels.count],
                               groups: config.normNumGroups, linearProjection: config.useLinearProjection)
    }

    /// `down_blocks` and `mid_block`, which a ControlNet copies from its UNet under the same names.
    static func encoderBlocks(_ w: WeightSource, config: UNet2DConditionConfig) throws -> ([DownBlock], MidBlock?) {
        let blocks = config.blockOutChannels.count
        let down = try config.downBlockTypes.enumerated().map { i, type in
            let p = "down_blocks.\(i)"
            let layers = 0..<config.layersPerBlock
            return DownBlock(
                resnets: try layers.map { try resnet(w, "\(p).resnets.\($0)", config: config) },
                attentions: type.hasPrefix("CrossAttn") ? try layers.map { try transformer(w, "\(p).attentions.\($0)", block: i, config: config) } : [],
                downsampler: i < blocks - 1 ? try Downsample2D(w, "\(p).downsamplers.0", padding: config.downsamplePadding) : nil)
        }
        let mid = config.midBlockType == nil ? nil : MidBlock(
            resnets: [try resnet(w, "mid_block.resnets.0", config: config), try resnet(w, "mid_block.resnets.1", config: config)],
            attentions: [try transformer(w, "mid_block.attentions.0", block: blocks - 1, config: config)])
        return (down, mid)
    }

    /// diffusers' `get_timestep_embedding` in float32 as PyTorch computes it: frequencies
    /// exp(−ln(10000)·i/(half − freq_shift)), [sin, cos] of t·f, swapped to [cos, sin] by flip_sin_to_cos.
    package func timestepFeatures(_ timesteps: [Float]) -> Tensor { Self.timestepFeatures(timesteps, config: config) }

    package static func timestepFeatures(_ timesteps: [Float], config: UNet2DConditionConfig) -> Tensor {
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

    /// SiLU(time_embedding(time_proj(t))) for a batch: what every resnet's time_emb_proj takes.
    package static func timeEmbedding(_ linears: (linear1: Linear, linear2: Linear), features: Tensor) -> Tensor {
        var temb = linears.linear1(features)
        temb.apply(.silu)
        temb = linears.linear2(temb)
        temb.apply(.silu)  // every resnet's time_emb_proj takes SiLU(temb); do it once here
        return temb
    }

    /// The down blocks from `h` (conv_in's output, which is the first skip), then the mid block: the
    /// features and every skip, in the order the up blocks take them back (last first).
    package static func encode(_ h: Tensor, temb: Tensor, context: Tensor, down: [DownBlock], mid: MidBlock?) -> (Tensor, [Tensor]) {
        var h = h, skips = [h]
        for block in down {
            for (j, resnet) in block.resnets.enumerated() {
                h = resnet(h, temb: temb)
                if !block.attentions.isEmpty { h = block.attentions[j](h, context: context) }
                skips.append(h)
            }
            if let downsampler = block.downsampler {
                h = downsampler(h)
                skips.append(h)
            }
        }
        if let mid {
            h = mid.resnets[0](h, temb: temb)
            h = mid.attentions[0](h, context: context)
            h = mid.resnets[1](h, temb: temb)
        }
        return (h, skips)
    }

    /// sample [B, C, H, W] at `timestep` (one for the whole batch), text states [B, 77, D] → the
    /// model's prediction [B, C_out, H, W] (noise, v or sample, as the scheduler's prediction_type says).
    /// `residuals` (a ControlNet's) add to the skips and to the mid block's output, as diffusers'
    /// `down_block_additional_residuals` / `mid_block_additional_residual` do.
    package func callAsFunction(_ sample: Tensor, timestep: Float, context: Tensor, residuals: ControlResiduals? = nil) -> Tensor {
        let temb = Self.timeEmbedding(timeEmbedding, features: timestepFeatures(Array(repeating: timestep, count: sample.shape[0])))
        var (h, skips) = Self.encode(convIn(config.centerInputSample ? sample * 2 + -1 : sample), temb: temb, context: context,
                                     down: downBlocks, mid: midBlock)
        if let residuals {
            skips = zip(skips, residuals.down).map { $0 + $1 }
            h = h + residuals.mid
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
