import ChorusTensor
import Foundation

/// The parts of a Hugging Face CLIP `config.json` the forward pass needs. Missing fields take the
/// defaults transformers' `CLIPTextConfig` / `CLIPVisionConfig` give them.
public struct CLIPConfig: Decodable, Sendable {
    public struct Text: Decodable, Sendable {
        public var hiddenSize = 512
        public var intermediateSize = 2048
        public var numHiddenLayers = 12
        public var numAttentionHeads = 8
        public var maxPositionEmbeddings = 77
        public var hiddenAct = "quick_gelu"
        public var layerNormEps: Float = 1e-5
        public var eosTokenId = 2
        public var padTokenId = 1
        public var vocabSize = 49408

        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
            case numAttentionHeads = "num_attention_heads", maxPositionEmbeddings = "max_position_embeddings"
            case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps", eosTokenId = "eos_token_id"
            case padTokenId = "pad_token_id", vocabSize = "vocab_size"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try c.read(.hiddenSize, into: &hiddenSize)
            try c.read(.intermediateSize, into: &intermediateSize)
            try c.read(.numHiddenLayers, into: &numHiddenLayers)
            try c.read(.numAttentionHeads, into: &numAttentionHeads)
            try c.read(.maxPositionEmbeddings, into: &maxPositionEmbeddings)
            try c.read(.hiddenAct, into: &hiddenAct)
            try c.read(.layerNormEps, into: &layerNormEps)
            try c.read(.eosTokenId, into: &eosTokenId)
            try c.read(.padTokenId, into: &padTokenId)
            try c.read(.vocabSize, into: &vocabSize)
        }
    }

    public struct Vision: Decodable, Sendable {
        public var hiddenSize = 768
        public var intermediateSize = 3072
        public var numHiddenLayers = 12
        public var numAttentionHeads = 12
        public var imageSize = 224
        public var patchSize = 32
        public var numChannels = 3
        public var hiddenAct = "quick_gelu"
        public var layerNormEps: Float = 1e-5

        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
            case numAttentionHeads = "num_attention_heads", imageSize = "image_size", patchSize = "patch_size"
            case numChannels = "num_channels", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try c.read(.hiddenSize, into: &hiddenSize)
            try c.read(.intermediateSize, into: &intermediateSize)
            try c.read(.numHiddenLayers, into: &numHiddenLayers)
            try c.read(.numAttentionHeads, into: &numAttentionHeads)
            try c.read(.imageSize, into: &imageSize)
            try c.read(.patchSize, into: &patchSize)
            try c.read(.numChannels, into: &numChannels)
            try c.read(.hiddenAct, into: &hiddenAct)
            try c.read(.layerNormEps, into: &layerNormEps)
        }
    }

    public var text = Text()
    public var vision = Vision()
    public var projectionDim = 512

    enum CodingKeys: String, CodingKey {
        case text = "text_config", vision = "vision_config", projectionDim = "projection_dim"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        text = try c.decodeIfPresent(Text.self, forKey: .text) ?? text
        vision = try c.decodeIfPresent(Vision.self, forKey: .vision) ?? vision
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? projectionDim
    }
}

extension Activation {
    /// The activation a config names, or an error naming it.
    static func named(_ name: String, in file: String) throws -> Activation {
        guard let activation = Activation(configName: name) else {
            throw WeightFileError(file, "hidden_act '\(name)' is not supported")
        }
        return activation
    }
}
