import ChorusTensor
import Foundation

/// The parts of a Llama `text_config` the forward pass needs, with transformers' `LlamaConfig`
/// defaults. RoPE settings are read from transformers 5's `rope_parameters` or from 4.x's
/// `rope_theta` + `rope_scaling`.
public struct LlamaConfig: Decodable, Sendable {
    public var vocabSize = 32000
    public var hiddenSize = 4096
    public var intermediateSize = 11008
    public var numHiddenLayers = 32
    public var numAttentionHeads = 32
    public var numKeyValueHeads: Int?
    public var headDim: Int?
    public var hiddenAct = "silu"
    public var maxPositionEmbeddings = 2048
    public var rmsNormEps: Float = 1e-6
    public var attentionBias = false
    public var mlpBias = false
    public var tieWordEmbeddings = false
    public var bosTokenId: Int? = 1
    /// One id or several (Llama 3 stops on <|eot_id|> and <|end_of_text|>).
    public var eosTokenIds: [Int] = [2]
    public var rope = RoPE()

    public struct RoPE: Sendable, Equatable {
        public enum Scaling: Sendable, Equatable {
            case none
            case linear(factor: Float)
            case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalContext: Int)
        }
        public var theta: Float = 10_000
        public var scaling = Scaling.none

        public init(theta: Float = 10_000, scaling: Scaling = .none) {
            self.theta = theta
            self.scaling = scaling
        }
    }

    public var keyValueHeads: Int { numKeyValueHeads ?? numAttentionHeads }
    public var headSize: Int { headDim ?? hiddenSize / numAttentionHeads }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", hiddenAct = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings", rmsNormEps = "rms_norm_eps"
        case attentionBias = "attention_bias", mlpBias = "mlp_bias", tieWordEmbeddings = "tie_word_embeddings"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
        case ropeTheta = "rope_theta", ropeScaling = "rope_scaling", ropeParameters = "rope_parameters"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(.vocabSize, into: &vocabSize)
        try c.read(.hiddenSize, into: &hiddenSize)
        try c.read(.intermediateSize, into: &intermediateSize)
        try c.read(.numHiddenLayers, into: &numHiddenLayers)
        try c.read(.numAttentionHeads, into: &numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads)
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim)
        try c.read(.hiddenAct, into: &hiddenAct)
        try c.read(.maxPositionEmbeddings, into: &maxPositionEmbeddings)
        try c.read(.rmsNormEps, into: &rmsNormEps)
        try c.read(.attentionBias, into: &attentionBias)
        try c.read(.mlpBias, into: &mlpBias)
        try c.read(.tieWordEmbeddings, into: &tieWordEmbeddings)
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId) ?? bosTokenId
        if let ids = try? c.decodeIfPresent([Int].self, forKey: .eosTokenId) {
            eosTokenIds = ids
        } else if let id = try c.decodeIfPresent(Int.self, forKey: .eosTokenId) {
            eosTokenIds = [id]
        }
        // transformers 5 folds theta and scaling into one `rope_parameters`; 4.x keeps them apart.
        let parameters = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
            ?? c.decodeIfPresent(RopeParameters.self, forKey: .ropeScaling)
        rope.theta = try parameters?.ropeTheta ?? c.decodeIfPresent(Float.self, forKey: .ropeTheta) ?? rope.theta
        if let parameters { rope.scaling = try parameters.scaling() }
    }

    struct RopeParameters: Decodable {
        var ropeType: String?
        var type: String?
        var ropeTheta: Float?
        var factor: Float?
        var lowFreqFactor: Float?
        var highFreqFactor: Float?
        var originalMaxPositionEmbeddings: Int?

        enum CodingKeys: String, CodingKey {
            case ropeType = "rope_type", type, ropeTheta = "rope_theta", factor
            case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
            case originalMaxPositionEmbeddings = "original_max_position_embeddings"
        }

        func scaling() throws -> RoPE.Scaling {
            switch ropeType ?? type ?? "default" {
            case "default": return .none
            case "linear": return .linear(factor: factor ?? 1)
            case "llama3":
                guard let factor, let low = lowFreqFactor, let high = highFreqFactor, let original = originalMaxPositionEmbeddings else {
                    throw WeightFileError("config.json", "llama3 RoPE scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings")
                }
                return .llama3(factor: factor, lowFrequencyFactor: low, highFrequencyFactor: high, originalContext: original)
            case let other:
                throw WeightFileError("config.json", "RoPE type '\(other)' is not supported (default, linear and llama3 are)")
            }
        }
    }
}
