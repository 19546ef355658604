import ChorusTensor
import Foundation

/// The parts of a diffusers `vae/config.json` the forward pass needs; defaults are `AutoencoderKL`'s.
package struct AutoencoderKLConfig: Decodable, Sendable {
    package var inChannels = 3
    package var outChannels = 3
    package var latentChannels = 4
    package var blockOutChannels = [64]
    package var layersPerBlock = 1
    package var normNumGroups = 32
    package var scalingFactor: Float = 0.18215
    package var shiftFactor: Float?
    package var useQuantConv = true
    package var usePostQuantConv = true
    package var midBlockAddAttention = true

    package enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", latentChannels = "latent_channels"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block", normNumGroups = "norm_num_groups"
        case scalingFactor = "scaling_factor", shiftFactor = "shift_factor", useQuantConv = "use_quant_conv"
        case usePostQuantConv = "use_post_quant_conv", midBlockAddAttention = "mid_block_add_attention"
    }

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(.inChannels, into: &inChannels)
        try c.read(.outChannels, into: &outChannels)
        try c.read(.latentChannels, into: &latentChannels)
        try c.read(.blockOutChannels, into: &blockOutChannels)
        try c.read(.layersPerBlock, into: &layersPerBlock)
        try c.read(.normNumGroups, into: &normNumGroups)
        try c.read(.scalingFactor, into: &scalingFactor)
        shiftFactor = try c.decodeIfPresent(Float.self, forKey: .shiftFactor)
        try c.read(.useQuantConv, into: &useQuantConv)
        try c.read(.usePostQuantConv, into: &usePostQuantConv)
        try c.read(.midBlockAddAttention, into: &midBlockAddAttention)
    }
}

/// diffusers' `AutoencoderKL`: images ⇄ latents at 1/2^(blocks−1) of the size. Weight names follow the
/// checkpoint (`decoder.up_blocks.0.resnets.2.conv1`); the VAE's norms use eps 1e-6.
package struct AutoencoderKL: Sendable {
    /// The mid block's single-head self-attention (`Attention` with a group norm and biased projections).
    /// Checkpoints converted before diffusers 0.14 name its parts query/key/value/proj_attn.
    package struct AttentionBlock: Sendable {
        package let groupNorm: GroupNorm
        package let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear

        package init(_ w: WeightSource, _ p: String, groups: Int) throws {
            groupNorm = try GroupNorm(w, "\(p).group_norm", groups: groups, eps: 1e-6)
            let old = !w.names.contains("\(p).to_q.weight") && w.names.contains("\(p).query.weight")
            toQ = try Linear(w, old ? "\(p).query" : "\(p).to_q")
            toK = try Linear(w, old ? "\(p).key" : "\(p).to_k")
            toV = try Linear(w, old ? "\(p).value" : "\(p).to_v")
            toOut = try Linear(w, old ? "\(p).proj_attn" : "\(p).to_out.0")
        }

        package func callAsFunction(_ x: Tensor) -> Tensor {
            let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let h = groupNorm(x).reshaped([batch, channels, height * width]).permuted([0, 2, 1])
            let a = toOut(Attention.attend(query: toQ(h), key: toK(h), value: toV(h), heads: 1))
            return x + a.permuted([0, 2, 1]).reshaped([batch, channels, height, width])
        }
    }

    /// `UNetMidBlock2D`: resnet, attention, resnet, without a time embedding.
    package struct MidBlock: Sendable {
        package let resnets: [ResnetBlock2D]
        package let attention: AttentionBlock?

        package init(_ w: WeightSource, _ p: String, groups: Int, attention: Bool) throws {
            resnets = try (0..<2).map { try ResnetBlock2D(w, "\(p).resnets.\($0)", groups: groups, eps: 1e-6, timeEmbedding: false) }
            self.attention = attention ? try AttentionBlock(w, "\(p).attentions.0", groups: groups) : nil
        }

        package func callAsFunction(_ x: Tensor) -> Tensor {
            var h = resnets[0](x, temb: nil)
            if let attention { h = attention(h) }
            return resnets[1](h, temb: nil)
        }
    }

    package struct Encoder: Sendable {
        package let convIn: Conv2d
        package let downBlocks: [(resnets: [ResnetBlock2D], downsampler: Downsample2D?)]
        package let midBlock: MidBlock
        package let convNormOut: GroupNorm, convOut: Conv2d

        package func callAsFunction(_ x: Tensor) -> Tensor {
            var h = convIn(x)
            for block in downBlocks {
                for resnet in block.resnets { h = resnet(h, temb: nil) }
                if let down = block.downsampler { h = down(h) }
            }
            return convOut(convNormOut(midBlock(h), activation: .silu))
        }
    }

    package struct Decoder: Sendable {
        package let convIn: Conv2d
        package let midBlock: MidBlock
        package let upBlocks: [(resnets: [ResnetBlock2D], upsampler: Upsample2D?)]
        package let convNormOut: GroupNorm, convOut: Conv2d

        package func callAsFunction(_ z: Tensor) -> Tensor {
            var h = midBlock(convIn(z))
            for block in upBlocks {
                for resnet in block.resnets { h = resnet(h, temb: nil) }
                if let up = block.upsampler { h = up(h) }
            }
            return convOut(convNormOut(h, activation: .silu))
        }
    }

    package let config: AutoencoderKLConfig
    package let encoder: Encoder, decoder: Decoder
    package let quantConv: Conv2d?, postQuantConv: Conv2d?

    package init(_ w: WeightSource, config: AutoencoderKLConfig) throws {
        self.config = config
        let groups = config.normNumGroups, levels = config.blockOutChannels.count
        func resnets(_ p: String, _ count: Int) throws -> [ResnetBlock2D] {
            try (0..<count).map { try ResnetBlock2D(w, "\(p).resnets.\($0)", groups: groups, eps: 1e-6, timeEmbedding: false) }
        }
        encoder = Encoder(
            convIn: try Conv2d(w, "encoder.conv_in", padding: 1),
            downBlocks: try (0..<levels).map { i in
                (try resnets("encoder.down_blocks.\(i)", config.layersPerBlock),
                 i < levels - 1 ? try Downsample2D(w, "encoder.down_blocks.\(i).downsamplers.0", padding: 0) : nil)
            },
            midBlock: try MidBlock(w, "encoder.mid_block", groups: groups, attention: config.midBlockAddAttention),
            convNormOut: try GroupNorm(w, "encoder.conv_norm_out", groups: groups, eps: 1e-6),
            convOut: try Conv2d(w, "encoder.conv_out", padding: 1))
        decoder = Decoder(
            convIn: try Conv2d(w, "decoder.conv_in", padding: 1),
            midBlock: try MidBlock(w, "decoder.mid_block", groups: groups, attention: config.midBlockAddAttention),
            upBlocks: try (0..<levels).map { i in
                (try resnets("decoder.up_blocks.\(i)", config.layersPerBlock + 1),
                 i < levels - 1 ? try Upsample2D(w, "decoder.up_blocks.\(i).upsamplers.0") : nil)
            },
            convNormOut: try GroupNorm(w, "decoder.conv_norm_out", groups: groups, eps: 1e-6),
            convOut: try Conv2d(w, "decoder.conv_out", padding: 1))
        quantConv = config.useQuantConv ? try Conv2d(w, "quant_conv") : nil
        postQuantConv = config.usePostQuantConv ? try Conv2d(w, "post_quant_conv") : nil
    }

    /// How many times smaller the latents are than the image.
    package var downscale: Int { 1 << (config.blockOutChannels.count - 1) }

    /// Image in [−1, 1], [B, 3, H, W] → the latent distribution's mean and standard deviation
    /// (std = exp(½ · clamp(logvar, −30, 20))), each [B, latent, H/f, W/f]. Not yet scaled by scaling_factor.
    package func encode(_ image: Tensor) -> (mean: Tensor, std: Tensor) {
        var moments = encoder(image)
        if let quantConv { moments = quantConv(moments) }
        let parts = moments.split(axis: 1, sizes: [config.latentChannels, config.latentChannels])
        var std = parts[1]
        std.storage.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = Float(exp(0.5 * Double(min(max(p[i], -30), 20)))) }
        }
        return (parts[0], std)
    }

    /// Latents (already divided by scaling_factor) → image [B, 3, H, W], about [−1, 1].
    package func decode(_ latents: Tensor) -> Tensor {
        decoder(postQuantConv.map { $0(latents) } ?? latents)
    }
}
