import ChorusTensor

/// `self_attn` of a Llama layer: grouped-query attention with RoPE over a KV cache.
struct LlamaAttention: Sendable {
    /// q_proj, k_proj and v_proj stacked into one [(H + 2·Hkv)·D, hidden] matrix at load, so a decoded
    /// token streams the three weights in one matrix-vector product instead of three.
    let qkvProj: Linear
    let oProj: Linear
    let heads: Int
    let keyValueHeads: Int
    let headSize: Int

    init(_ w: WeightSource, _ prefix: String, config: LlamaConfig) throws {
        let (heads, keyValueHeads, headSize) = (config.numAttentionHeads, config.keyValueHeads, config.headSize)
        (self.heads, self.keyValueHeads, self.headSize) = (heads, keyValueHeads, headSize)
        let parts = try ["q_proj", "k_proj", "v_proj"].map { try Linear(w, "\(prefix).\($0)", bias: config.attentionBias) }
        let expected = [heads, keyValueHeads, keyValueHeads].map { [$0 * headSize, config.hiddenSize] }
        for (part, (name, shape)) in zip(parts, zip(["q_proj", "k_proj", "v_proj"], expected)) where [part.outFeatures, part.inFeatures] != shape {
            throw WeightFileError("model.safetensors", "\(prefix).\(name).weight is \([part.outFeatures, part.inFeatures]), expected \(shape)")
        }
        qkvProj = Linear(stacking: parts)
        oProj = try Linear(w, "\(prefix).o_proj", bias: config.attentionBias)
    }

    /// x [T, hidden] at positions cache.length ..< cache.length + T → [T, hidden]; appends to `cache`.
    func callAsFunction(_ x: Tensor, cache: inout KVCache, rotary: RotaryEmbedding) -> Tensor {
        let t = x.shape[0]
        let qWidth = heads * headSize, kvWidth = keyValueHeads * headSize
        let (q, k, v) = qkvProj(x).splitColumns(qWidth, kvWidth, kvWidth)
        var query = q.reshaped([1, t, qWidth])
        var key = k.reshaped([1, t, kvWidth])
        rotary.apply(&query, heads: heads, start: cache.length)
        rotary.apply(&key, heads: keyValueHeads, start: cache.length)
        cache.append(keys: key, values: v.reshaped([1, t, kvWidth]))
        let attended = cache.attend(query: query, heads: heads, causal: true)
        return oProj(attended.reshaped([t, qWidth]))
    }
}

/// `mlp`: SwiGLU, down(act(gate(x)) · up(x)).
struct LlamaMLP: Sendable {
    /// gate_proj and up_proj stacked into one [2·I, hidden] matrix at load (one pass per token).
    let gateUpProj: Linear
    let downProj: Linear
    let activation: Activation

    init(_ w: WeightSource, _ prefix: String, config: LlamaConfig) throws {
        let gate = try Linear(w, "\(prefix).gate_proj", bias: config.mlpBias)
        let up = try Linear(w, "\(prefix).up_proj", bias: config.mlpBias)
        let shape = [config.intermediateSize, config.hiddenSize]
        guard [gate.outFeatures, gate.inFeatures] == shape, [up.outFeatures, up.inFeatures] == shape else {
            throw WeightFileError("model.safetensors", "\(prefix).gate_proj/up_proj are \([gate.outFeatures, gate.inFeatures])/\([up.outFeatures, up.inFeatures]), expected \(shape)")
        }
        gateUpProj = Linear(stacking: [gate, up])
        downProj = try Linear(w, "\(prefix).down_proj", bias: config.mlpBias)
        guard let activation = Activation(configName: config.hiddenAct) else {
            throw WeightFileError("config.json", "hidden_act '\(config.hiddenAct)' is not supported")
        }
        self.activation = activation
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        downProj(gatedActivation(gateUpProj(x), activation))
    }
}
