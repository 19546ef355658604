import ChorusTensor
import Foundation

/// `model.layers.N.self_attn` of Gemma 3: grouped-query attention whose queries and keys are RMS-normed
/// per head before RoPE, over the whole cache (global layers) or a sliding window (local ones).
struct Gemma3Attention: Sendable {
    /// q_proj, k_proj and v_proj stacked (`Linear(stacking:)`): one quantization of x, one pass over the cores.
    let qkvProj: Linear
    let oProj: Linear
    let qNorm: RMSNorm
    let kNorm: RMSNorm
    let heads: Int
    let keyValueHeads: Int
    let headSize: Int
    let scale: Float
    let window: Int?
    let rotary: RotaryEmbedding

    init(_ w: WeightSource, _ prefix: String, config: Gemma3Config, layer: Int) throws {
        (heads, keyValueHeads, headSize) = (config.numAttentionHeads, config.numKeyValueHeads, config.headDim)
        let qProj = try Linear(w, "\(prefix).q_proj", bias: false)
        let kProj = try Linear(w, "\(prefix).k_proj", bias: false)
        let vProj = try Linear(w, "\(prefix).v_proj", bias: false)
        oProj = try Linear(w, "\(prefix).o_proj", bias: false)
        qNorm = try RMSNorm(w, "\(prefix).q_norm", eps: config.rmsNormEps)
        kNorm = try RMSNorm(w, "\(prefix).k_norm", eps: config.rmsNormEps)
        let expected = [[heads * headSize, config.hiddenSize], [keyValueHeads * headSize, config.hiddenSize], [keyValueHeads * headSize, config.hiddenSize]]
        for (part, shape) in zip([qProj, kProj, vProj], expected) where [part.outFeatures, part.inFeatures] != shape {
            throw WeightFileError("gguf", "\(prefix) projection is \([part.outFeatures, part.inFeatures]), expected \(shape)")
        }
        qkvProj = Linear(stacking: [qProj, kProj, vProj])
        scale = 1 / config.queryPreAttentionScalar.squareRoot()
        let sliding = config.isSliding(layer: layer)
        window = sliding ? config.slidingWindow : nil
        rotary = RotaryEmbedding(headSize: headSize, rope: .init(theta: sliding ? config.ropeLocalBaseFrequency : config.ropeTheta))
    }

    func callAsFunction(_ x: Tensor, cache: inout KVCache) -> Tensor {
        let t = x.shape[0]
        let (q, k, v) = qkvProj(x).splitColumns(heads * headSize, keyValueHeads * headSize, keyValueHeads * headSize)
        // Per-head RMSNorm: rows of headSize.
        var query = qNorm(q.reshaped([t * heads, headSize])).reshaped([1, t, heads * headSize])
        var key = kNorm(k.reshaped([t * keyValueHeads, headSize])).reshaped([1, t, keyValueHeads * headSize])
        rotary.apply(&query, heads: heads, start: cache.length)
        rotary.apply(&key, heads: keyValueHeads, start: cache.length)
        cache.append(keys: key, values: v.reshaped([1, t, keyValueHeads * headSize]))
        let attended = cache.attend(query: query, heads: heads, causal: true, scale: scale, window: window)
        return oProj(attended.reshaped([t, heads * headSize]))
    }
}

/// `model.layers.N`: sandwich norms — each of attention and MLP is normed before and after, then added.
struct Gemma3DecoderLayer: Sendable {
    let inputLayernorm: RMSNorm
    let selfAttn: Gemma3Attention
    let postAttentionLayernorm: RMSNorm
    let preFeedforwardLayernorm: RMSNorm
    /// mlp.gate_proj and mlp.up_proj stacked.
    let gateUpProj: Linear
    let downProj: Linear
    let postFeedforwardLayernorm: RMSNorm

    init(_ w: WeightSource, _ prefix: String, config: Gemma3Config, layer: Int) throws {
        let eps = config.rmsNormEps
        inputLayernorm = try RMSNorm(w, "\(prefix).input_layernorm", eps: eps)
        selfAttn = try Gemma3Attention(w, "\(prefix).self_attn", config: config, layer: layer)
        postAttentionLayernorm = try RMSNorm(w, "\(prefix).post_attention_layernorm", eps: eps)
        preFeedforwardLayernorm = try RMSNorm(w, "\(prefix).pre_feedforward_layernorm", eps: eps)
        gateUpProj = Linear(stacking: [try Linear(w, "\(prefix).mlp.gate_proj", bias: false), try Linear(w, "\(prefix).mlp.up_proj", bias: false)])
        downProj = try Linear(w, "\(prefix).mlp.down_proj", bias: false)
        postFeedforwardLayernorm = try RMSNorm(w, "\(prefix).post_feedforward_layernorm", eps: eps)
    }

    func callAsFunction(_ x: Tensor, cache: inout KVCache) -> Tensor {
        let h = x + postAttentionLayernorm(selfAttn(inputLayernorm(x), cache: &cache))
        let normed = preFeedforwardLayernorm(h)
        // GeGLU: down(gelu_tanh(gate(x)) · up(x)).
        return h + postFeedforwardLayernorm(downProj(gatedActivation(gateUpProj(normed), .geluTanh)))
    }
}

/// `Gemma3ForCausalLM` (text): embeddings scaled by √hidden, the decoder layers, the final norm, and the
/// LM head tied to the embeddings. The norms hold (1 + weight) as llama.cpp's converter stores them.
public struct Gemma3Model: CausalLanguageModel {
    /// [vocabulary, hidden], quantized as the file keeps it; also the LM head.
    let embedTokens: Linear
    let embedScale: Float
    let layers: [Gemma3DecoderLayer]
    let norm: RMSNorm
    let lmHead: Linear
    public let config: Gemma3Config

    public init(_ w: WeightSource, config: Gemma3Config) throws {
        embedTokens = Linear(weight: try w.linearWeight("model.embed_tokens.weight"), bias: nil)
        guard [embedTokens.outFeatures, embedTokens.inFeatures] == [config.vocabSize, config.hiddenSize] else {
            throw WeightFileError("gguf", "model.embed_tokens.weight is \([embedTokens.outFeatures, embedTokens.inFeatures]), expected \([config.vocabSize, config.hiddenSize])")
        }
        // transformers keeps the scale in the weights' dtype: √hidden rounded to float32.
        embedScale = Float(config.hiddenSize).squareRoot()
        layers = try (0..<config.numHiddenLayers).map { try Gemma3DecoderLayer(w, "model.layers.\($0)", config: config, layer: $0) }
        norm = try RMSNorm(w, "model.norm", eps: config.rmsNormEps)
        lmHead = embedTokens
        self.config = config
    }

    public var vocabularySize: Int { config.vocabSize }
    public var hiddenSize: Int { config.hiddenSize }

    public func newCache(capacity: Int = 256) -> LlamaCache {
        LlamaCache(layers: layers.map { _ in KVCache(batch: 1, width: config.numKeyValueHeads * config.headDim, capacity: capacity) })
    }

    public func embed(_ ids: [Int]) -> Tensor { embedTokens.weightRows(ids, scale: embedScale) }

    public func forward(_ embeddings: Tensor, cache: inout LlamaCache) -> Tensor {
        var x = embeddings
        for (i, layer) in layers.enumerated() { x = layer(x, cache: &cache.layers[i]) }
        return norm(x)
    }

    public func logits(_ hidden: Tensor) -> Tensor { lmHead(hidden) }
}
