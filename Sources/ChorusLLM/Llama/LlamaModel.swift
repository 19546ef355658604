import ChorusTensor

/// `model.layers.N`: pre-norm attention and MLP, each with a residual.
struct LlamaDecoderLayer: Sendable {
    let inputLayernorm: RMSNorm
    let selfAttn: LlamaAttention
    let postAttentionLayernorm: RMSNorm
    let mlp: LlamaMLP

    init(_ w: WeightSource, _ prefix: String, config: LlamaConfig) throws {
        inputLayernorm = try RMSNorm(w, "\(prefix).input_layernorm", eps: config.rmsNormEps)
        selfAttn = try LlamaAttention(w, "\(prefix).self_attn", config: config)
        postAttentionLayernorm = try RMSNorm(w, "\(prefix).post_attention_layernorm", eps: config.rmsNormEps)
        mlp = try LlamaMLP(w, "\(prefix).mlp", config: config)
    }

    func callAsFunction(_ x: Tensor, cache: inout KVCache, rotary: RotaryEmbedding) -> Tensor {
        let h = x + selfAttn(inputLayernorm(x), cache: &cache, rotary: rotary)
        return h + mlp(postAttentionLayernorm(h))
    }
}

/// The keys and values of every layer for one sequence.
public struct LlamaCache: Sendable {
    var layers: [KVCache]

    /// Positions already computed.
    public var length: Int { layers.first?.length ?? 0 }

    /// Keeps the first `length` positions (a new prompt that shares only that much).
    public mutating func truncate(to length: Int) {
        for i in layers.indices { layers[i].truncate(to: length) }
    }
}

/// `LlamaForCausalLM`: token embeddings, the decoder layers, the final norm and the LM head.
/// `prefix` is where the decoder sits in the checkpoint (`language_model.model` in llava-hf folders,
/// `model.language_model` in transformers 5's), `lmHead` the head's weight name or nil when tied.
public struct LlamaModel: Sendable {
    /// The token embedding table [vocabulary, hidden], kept as the checkpoint keeps it (quantized in GGUF).
    let embedTokens: Linear
    let layers: [LlamaDecoderLayer]
    let norm: RMSNorm
    let lmHead: Linear
    let rotary: RotaryEmbedding
    public let config: LlamaConfig

    public init(_ w: WeightSource, prefix: String, lmHead lmHeadName: String?, config: LlamaConfig) throws {
        embedTokens = Linear(weight: try w.linearWeight("\(prefix).embed_tokens.weight"), bias: nil)
        guard [embedTokens.outFeatures, embedTokens.inFeatures] == [config.vocabSize, config.hiddenSize] else {
            throw WeightFileError("model.safetensors", "\(prefix).embed_tokens.weight is \([embedTokens.outFeatures, embedTokens.inFeatures]), expected \([config.vocabSize, config.hiddenSize])")
        }
        layers = try (0..<config.numHiddenLayers).map { try LlamaDecoderLayer(w, "\(prefix).layers.\($0)", config: config) }
        norm = try RMSNorm(w, "\(prefix).norm", eps: config.rmsNormEps)
        lmHead = try lmHeadName.map { Linear(weight: try w.linearWeight($0), bias: nil) } ?? embedTokens
        rotary = RotaryEmbedding(headSize: config.headSize, rope: config.rope)
        self.config = config
    }

    public var hiddenSize: Int { config.hiddenSize }

    public func newCache(capacity: Int = 256) -> LlamaCache {
        LlamaCache(layers: layers.map { _ in KVCache(batch: 1, width: config.keyValueHeads * config.headSize, capacity: capacity) })
    }

    /// Token ids → embeddings [T, hidden].
    public func embed(_ ids: [Int]) -> Tensor { embedTokens.weightRows(ids) }

    /// Embeddings [T, hidden] continuing the cached sequence → final hidden states [T, hidden].
    public func forward(_ embeddings: Tensor, cache: inout LlamaCache) -> Tensor {
        var x = embeddings
        for (i, layer) in layers.enumerated() { x = layer(x, cache: &cache.layers[i], rotary: rotary) }
        return norm(x)
    }

    /// Hidden states [T, hidden] → logits [T, vocab].
    public func logits(_ hidden: Tensor) -> Tensor { lmHead(hidden) }
}
