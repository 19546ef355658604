import ChorusTensor

/// The parts of a diffusers `unet/config.json` the forward pass needs, under the file's own names.
/// Missing fields take `UNet2DConditionModel`'s defaults.
package struct UNet2DConditionConfig: Decodable, Sendable {
    package var inChannels = 4
    package var outChannels = 4
    package var blockOutChannels = [320, 640, 1280, 1280]
    package var downBlockTypes = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    package var upBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    package var midBlockType: String? = "UNetMidBlock2DCrossAttn"
    package var layersPerBlock = 2
    package var normNumGroups = 32
    package var normEps: Float = 1e-5
    package var crossAttentionDim = PerBlock(1280)
    /// diffusers' historical misnomer: without `num_attention_heads` this is the number of heads.
    package var attentionHeadDim = PerBlock(8)
    package var numAttentionHeads: PerBlock?
    package var transformerLayersPerBlock = PerBlock(1)
    package var useLinearProjection = false
    package var flipSinToCos = true
    package var freqShift = 0
    package var downsamplePadding = 1
    package var actFn = "silu"
    package var timeEmbeddingType = "positional"
    package var resnetTimeScaleShift = "default"
    package var classEmbedType: String?
    package var additionEmbedType: String?
    package var onlyCrossAttention = false
    package var centerInputSample = false
    package var sampleSize: Int?

    /// One value for every block, or one per block, as the config may give either.
    package struct PerBlock: Decodable, Sendable {
        package var values: [Int]
        package init(_ value: Int) { values = [value] }
        package init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let list = try? c.decode([Int].self) {
                values = list
            } else {
                values = [try c.decode(Int.self)]
            }
        }
        package subscript(block: Int, of count: Int) -> Int { values.count == 1 ? values[0] : values[min(block, values.count - 1)] }
    }

    package enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", blockOutChannels = "block_out_channels"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types", midBlockType = "mid_block_type"
        case layersPerBlock = "layers_per_block", normNumGroups = "norm_num_groups", normEps = "norm_eps"
        case crossAttentionDim = "cross_attention_dim", attentionHeadDim = "attention_head_dim"
        case numAttentionHeads = "num_attention_heads", transformerLayersPerBlock = "transformer_layers_per_block"
        case useLinearProjection = "use_linear_projection", flipSinToCos = "flip_sin_to_cos", freqShift = "freq_shift"
        case downsamplePadding = "downsample_padding", actFn = "act_fn", timeEmbeddingType = "time_embedding_type"
        case resnetTimeScaleShift = "resnet_time_scale_shift", classEmbedType = "class_embed_type"
        case additionEmbedType = "addition_embed_type", onlyCrossAttention = "only_cross_attention"
        case centerInputSample = "center_input_sample", sampleSize = "sample_size"
    }

    package init() {}

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(.inChannels, into: &inChannels)
        try c.read(.outChannels, into: &outChannels)
        try c.read(.blockOutChannels, into: &blockOutChannels)
        try c.read(.downBlockTypes, into: &downBlockTypes)
        try c.read(.upBlockTypes, into: &upBlockTypes)
        midBlockType = try c.decodeIfPresent(String.self, forKey: .midBlockType) ?? (c.contains(.midBlockType) ? nil : midBlockType)
        try c.read(.layersPerBlock, into: &layersPerBlock)
        try c.read(.normNumGroups, into: &normNumGroups)
        try c.read(.normEps, into: &normEps)
        try c.read(.crossAttentionDim, into: &crossAttentionDim)
        try c.read(.attentionHeadDim, into: &attentionHeadDim)
        numAttentionHeads = try c.decodeIfPresent(PerBlock.self, forKey: .numAttentionHeads)
        try c.read(.transformerLayersPerBlock, into: &transformerLayersPerBlock)
        try c.read(.useLinearProjection, into: &useLinearProjection)
        try c.read(.flipSinToCos, into: &flipSinToCos)
        try c.read(.freqShift, into: &freqShift)
        try c.read(.downsamplePadding, into: &downsamplePadding)
        try c.read(.actFn, into: &actFn)
        try c.read(.timeEmbeddingType, into: &timeEmbeddingType)
        try c.read(.resnetTimeScaleShift, into: &resnetTimeScaleShift)
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        additionEmbedType = try c.decodeIfPresent(String.self, forKey: .additionEmbedType)
        onlyCrossAttention = (try? c.decodeIfPresent(Bool.self, forKey: .onlyCrossAttention)) ?? false
        try c.read(.centerInputSample, into: &centerInputSample)
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize)
    }

    /// Heads of block i (down-block order): `num_attention_heads`, else `attention_head_dim`.
    package func heads(block i: Int) -> Int { (numAttentionHeads ?? attentionHeadDim)[i, of: blockOutChannels.count] }

    /// Refuses what this UNet does not implement (SDXL's added embeddings, class conditioning, ...)
    /// with the field that asks for it.
    package func validate(file: String) throws {
        let blocks = blockOutChannels.count
        guard downBlockTypes.count == blocks, upBlockTypes.count == blocks else {
            throw WeightFileError(file, "has \(blocks) block_out_channels but \(downBlockTypes.count) down and \(upBlockTypes.count) up blocks")
        }
        let known: Set = ["CrossAttnDownBlock2D", "DownBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]
        if let unknown = (downBlockTypes + upBlockTypes).first(where: { !known.contains($0) }) {
            throw WeightFileError(file, "uses \(unknown), which this build does not implement")
        }
        if let mid = midBlockType, mid != "UNetMidBlock2DCrossAttn" {
            throw WeightFileError(file, "uses mid block \(mid), which this build does not implement")
        }
        for (field, value) in [("class_embed_type", classEmbedType), ("addition_embed_type", additionEmbedType)] {
            if let value { throw WeightFileError(file, "sets \(field) \"\(value)\" (SDXL-style conditioning), which this build does not implement") }
        }
        guard actFn == "silu", timeEmbeddingType == "positional", resnetTimeScaleShift == "default", !onlyCrossAttention else {
            throw WeightFileError(file, "asks for act_fn \(actFn), time_embedding_type \(timeEmbeddingType), resnet_time_scale_shift \(resnetTimeScaleShift), only_cross_attention \(onlyCrossAttention); this build implements SD 1.x/2.x (silu, positional, default, false)")
        }
    }
}
