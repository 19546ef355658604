import ChorusTensor
import Foundation

/// What a ControlNet adds to its UNet at one step: one residual per skip (in the UNet's skip order) and one
/// after the mid block.
package struct ControlResiduals: Sendable {
    package var down: [Tensor]
    package var mid: Tensor

    /// Several ControlNets at once add up (diffusers' `MultiControlNetModel`).
    package static func + (a: ControlResiduals, b: ControlResiduals) -> ControlResiduals {
        ControlResiduals(down: zip(a.down, b.down).map { $0 + $1 }, mid: a.mid + b.mid)
    }
}

/// The fields of a diffusers ControlNet `config.json` beyond the UNet's encoder, which it shares.
package struct ControlNetConfig: Decodable, Sendable {
    package var conditioningChannels = 3
    package var conditioningEmbeddingOutChannels = [16, 32, 96, 256]
    package var controlnetConditioningChannelOrder = "rgb"
    package var globalPoolConditions = false

    enum CodingKeys: String, CodingKey {
        case conditioningChannels = "conditioning_channels"
        case conditioningEmbeddingOutChannels = "conditioning_embedding_out_channels"
        case controlnetConditioningChannelOrder = "controlnet_conditioning_channel_order"
        case globalPoolConditions = "global_pool_conditions"
    }

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(.conditioningChannels, into: &conditioningChannels)
        try c.read(.conditioningEmbeddingOutChannels, into: &conditioningEmbeddingOutChannels)
        try c.read(.controlnetConditioningChannelOrder, into: &controlnetConditioningChannelOrder)
        try c.read(.globalPoolConditions, into: &globalPoolConditions)
    }
}

/// diffusers' `ControlNetModel`: a copy of the UNet's encoder (`conv_in`, `time_embedding`, `down_blocks`,
/// `mid_block`, the same types as `UNet2DConditionModel`'s) that also sees a control image through
/// `controlnet_cond_embedding`, and hands each skip and the mid block's output through a 1×1 "zero"
/// convolution (`controlnet_down_blocks`, `controlnet_mid_block`) to the UNet.
package struct ControlNetModel: Sendable {
    /// `ControlNetConditioningEmbedding`: conv_in, then per step of `conditioning_embedding_out_channels` a 3×3
    /// conv and a stride-2 3×3 conv, SiLU after each; conv_out to the UNet's first width.
    package struct ConditioningEmbedding: Sendable {
        package let convIn: Conv2d
        package let blocks: [Conv2d]
        package let convOut: Conv2d

        package func callAsFunction(_ image: Tensor) -> Tensor {
            var h = convIn(image)
            h.apply(.silu)
            for conv in blocks {
                h = conv(h)
                h.apply(.silu)
            }
            return convOut(h)
        }
    }

    package let config: UNet2DConditionConfig
    package let control: ControlNetConfig
    package let convIn: Conv2d
    package let timeEmbedding: (linear1: Linear, linear2: Linear)
    package let downBlocks: [UNet2DConditionModel.DownBlock]
    package let midBlock: UNet2DConditionModel.MidBlock?
    package let controlnetCondEmbedding: ConditioningEmbedding
    package let controlnetDownBlocks: [Conv2d]
    package let controlnetMidBlock: Conv2d
    /// The image/latent size ratio the conditioning embedding reduces by (2 per stride-2 conv).
    package var downscale: Int { 1 << (control.conditioningEmbeddingOutChannels.count - 1) }

    package init(_ w: WeightSource, config: UNet2DConditionConfig, control: ControlNetConfig, file: String) throws {
        var asUNet = config  // a ControlNet has no up blocks; check the rest as a UNet's
        asUNet.upBlockTypes = config.downBlockTypes.map { $0.replacingOccurrences(of: "Down", with: "Up") }
        try asUNet.validate(file: file)
        guard ["rgb", "bgr"].contains(control.controlnetConditioningChannelOrder) else {
            throw WeightFileError(file, "sets controlnet_conditioning_channel_order \"\(control.controlnetConditioningChannelOrder)\"; rgb or bgr")
        }
        guard !control.conditioningEmbeddingOutChannels.isEmpty else { throw WeightFileError(file, "has no conditioning_embedding_out_channels") }
        (self.config, self.control) = (config, control)
        convIn = try Conv2d(w, "conv_in", padding: 1)
        timeEmbedding = (try Linear(w, "time_embedding.linear_1"), try Linear(w, "time_embedding.linear_2"))
        (downBlocks, midBlock) = try UNet2DConditionModel.encoderBlocks(w, config: config)
        let steps = control.conditioningEmbeddingOutChannels.count - 1
        controlnetCondEmbedding = ConditioningEmbedding(
            convIn: try Conv2d(w, "controlnet_cond_embedding.conv_in", padding: 1),
            blocks: try (0..<(2 * steps)).map { try Conv2d(w, "controlnet_cond_embedding.blocks.\($0)", stride: $0 % 2 == 1 ? 2 : 1, padding: 1) },
            convOut: try Conv2d(w, "controlnet_cond_embedding.conv_out", padding: 1))
        let skips = 1 + downBlocks.reduce(0) { $0 + $1.resnets.count + ($1.downsampler == nil ? 0 : 1) }
        controlnetDownBlocks = try (0..<skips).map { try Conv2d(w, "controlnet_down_blocks.\($0)") }
        controlnetMidBlock = try Conv2d(w, "controlnet_mid_block")
    }

    /// Loads a diffusers ControlNet folder (config.json, diffusion_pytorch_model[.fp16].safetensors).
    package init(folder: String) throws {
        let config = folder + "/config.json"
        guard let data = FileManager.default.contents(atPath: config) else {
            throw WeightFileError(folder, "is not a diffusers ControlNet folder (no config.json)")
        }
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        guard json?["_class_name"] as? String == "ControlNetModel" else {
            throw WeightFileError("config.json", "names \(json?["_class_name"] as? String ?? "no class"), not ControlNetModel")
        }
        var stem = "diffusion_pytorch_model"
        if !FileManager.default.fileExists(atPath: "\(folder)/\(stem).safetensors"),
           FileManager.default.fileExists(atPath: "\(folder)/\(stem).fp16.safetensors") { stem += ".fp16" }
        try self.init(try SafeTensorsCheckpoint(folder: folder, stem: stem),
                      config: try JSONConfig.load(UNet2DConditionConfig.self, from: config),
                      control: try JSONConfig.load(ControlNetConfig.self, from: config), file: "config.json")
    }

    /// The cross-attention width it was trained with: it fits UNets of the same.
    package var crossAttentionDim: Int { config.crossAttentionDim[0, of: 1] }

    /// The control image [B, 3, H, W] in [0, 1] (RGB) through the conditioning embedding, once per run: it does
    /// not depend on the step.
    package func embed(_ image: Tensor) -> Tensor {
        guard control.controlnetConditioningChannelOrder == "bgr" else { return controlnetCondEmbedding(image) }
        return controlnetCondEmbedding(Tensor.concatenate((0..<3).reversed().map { image.slice(axis: 1, $0..<($0 + 1)) }, axis: 1))
    }

    /// One forward (`ControlNetModel.forward`): sample [B, C, h, w] at `timestep` with text states [B, 77, D]
    /// and the embedded control image [B, C0, h, w] → residuals × `scale` (in guess mode, down residuals
    /// scaled from 0.1 up to 1 along the skips, as `torch.logspace(-1, 0, n)`; pooled over the image where
    /// the config says `global_pool_conditions`).
    package func callAsFunction(_ sample: Tensor, timestep: Float, context: Tensor, condition: Tensor, scale: Float,
                                guessMode: Bool) -> ControlResiduals {
        let temb = UNet2DConditionModel.timeEmbedding(
            timeEmbedding, features: UNet2DConditionModel.timestepFeatures(Array(repeating: timestep, count: sample.shape[0]), config: config))
        let (h, skips) = UNet2DConditionModel.encode(convIn(sample) + condition, temb: temb, context: context, down: downBlocks, mid: midBlock)
        var down = zip(skips, controlnetDownBlocks).map { $1($0) }
        var mid = controlnetMidBlock(h)
        if guessMode && !control.globalPoolConditions {
            let n = down.count + 1
            let scales = (0..<n).map { i in Float(pow(10, -1 + Double(i) / Double(n - 1))) * scale }
            down = zip(down, scales).map { $0 * $1 }
            mid = mid * scales[n - 1]
        } else {
            down = down.map { $0 * scale }
            mid = mid * scale
        }
        if control.globalPoolConditions {
            down = down.map(Self.spatialMean)
            mid = Self.spatialMean(mid)
        }
        return ControlResiduals(down: down, mid: mid)
    }

    /// Each channel's mean over the image, spread back over it (`mean(dim=(2, 3), keepdim=True)` as added).
    static func spatialMean(_ x: Tensor) -> Tensor {
        let plane = x.shape[2] * x.shape[3]
        var out = x.storage
        for start in stride(from: 0, to: out.count, by: plane) {
            let mean = out[start..<(start + plane)].reduce(0, +) / Float(plane)
            for i in start..<(start + plane) { out[i] = mean }
        }
        return Tensor(shape: x.shape, storage: out)
    }
}
