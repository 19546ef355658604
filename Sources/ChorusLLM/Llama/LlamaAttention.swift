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
        for (part, (name, shape)) in zip(parts, zip(["q_proj", "k_proj", "v_proj"], expected)) where part.weight.shape != shape {
            throw WeightFileError("model.safetensors", "\(prefix).\(name).weight is \(part.weight.shape), expected \(shape)")
        }
        qkvProj = Linear(weight: Tensor(shape: [(heads + 2 * keyValueHeads) * headSize, config.hiddenSize],
                                        storage: parts.flatMap(\.weight.storage)),
                         bias: config.attentionBias ? Tensor(shape: [(heads + 2 * keyValueHeads) * headSize],
                                                             storage: parts.flatMap { $0.bias!.storage }) : nil)
        oProj = try Linear(w, "\(prefix).o_proj", bias: config.attentionBias)
    }

    /// x [T, hidden] at positions cache.length ..< cache.length + T → [T, hidden]; appends to `cache`.
    func callAsFunction(_ x: Tensor, cache: inout KVCache, rotary: RotaryEmbedding) -> Tensor {
        let t = x.shape[0]
        let qkv = qkvProj(x)
        let qWidth = heads * headSize, kvWidth = keyValueHeads * headSize
        var q = [Float](repeating: 0, count: t * qWidth)
        var k = [Float](repeating: 0, count: t * kvWidth), v = k
        qkv.storage.withUnsafeBufferPointer { src in
            let row = qWidth + 2 * kvWidth
            for i in 0..<t {
                let base = src.baseAddress! + i * row
                q.withUnsafeMutableBufferPointer { ($0.baseAddress! + i * qWidth).update(from: base, count: qWidth) }
                k.withUnsafeMutableBufferPointer { ($0.baseAddress! + i * kvWidth).update(from: base + qWidth, count: kvWidth) }
                v.withUnsafeMutableBufferPointer { ($0.baseAddress! + i * kvWidth).update(from: base + qWidth + kvWidth, count: kvWidth) }
            }
        }
        var query = Tensor(shape: [1, t, qWidth], storage: q)
        var key = Tensor(shape: [1, t, kvWidth], storage: k)
        rotary.apply(&query, heads: heads, start: cache.length)
        rotary.apply(&key, heads: keyValueHeads, start: cache.length)
        cache.append(keys: key, values: Tensor(shape: [1, t, kvWidth], storage: v))
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
    let intermediateSize: Int

    init(_ w: WeightSource, _ prefix: String, config: LlamaConfig) throws {
        let gate = try Linear(w, "\(prefix).gate_proj", bias: config.mlpBias)
        let up = try Linear(w, "\(prefix).up_proj", bias: config.mlpBias)
        let shape = [config.intermediateSize, config.hiddenSize]
        guard gate.weight.shape == shape, up.weight.shape == shape else {
            throw WeightFileError("model.safetensors", "\(prefix).gate_proj/up_proj are \(gate.weight.shape)/\(up.weight.shape), expected \(shape)")
        }
        gateUpProj = Linear(weight: Tensor(shape: [2 * config.intermediateSize, config.hiddenSize], storage: gate.weight.storage + up.weight.storage),
                            bias: config.mlpBias ? Tensor(shape: [2 * config.intermediateSize], storage: gate.bias!.storage + up.bias!.storage) : nil)
        downProj = try Linear(w, "\(prefix).down_proj", bias: config.mlpBias)
        guard let activation = Activation(configName: config.hiddenAct) else {
            throw WeightFileError("config.json", "hidden_act '\(config.hiddenAct)' is not supported")
        }
        self.activation = activation
        intermediateSize = config.intermediateSize
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let t = x.shape[0], n = intermediateSize
        let gateUp = gateUpProj(x)
        var gate = Tensor(zeros: [t, n])
        gateUp.storage.withUnsafeBufferPointer { src in
            gate.storage.withUnsafeMutableBufferPointer { dst in
                for i in 0..<t { (dst.baseAddress! + i * n).update(from: src.baseAddress! + i * 2 * n, count: n) }
            }
        }
        gate.apply(activation)
        gateUp.storage.withUnsafeBufferPointer { src in
            gate.storage.withUnsafeMutableBufferPointer { g in
                for i in 0..<t {
                    for j in 0..<n { g[i * n + j] *= src[i * 2 * n + n + j] }
                }
            }
        }
        return downProj(gate)
    }
}
