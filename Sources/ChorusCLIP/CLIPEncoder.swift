import ChorusTensor

/// One `encoder.layers.N` of a CLIP tower: pre-norm attention and MLP, each with a residual.
struct CLIPEncoderLayer: Sendable {
    struct SelfAttention: Sendable {
        let query: Linear, key: Linear, value: Linear, out: Linear
        let heads: Int

        init(_ w: WeightSource, _ prefix: String, heads: Int) throws {
            query = try Linear(w, "\(prefix).q_proj").packedForProducts()
            key = try Linear(w, "\(prefix).k_proj").packedForProducts()
            value = try Linear(w, "\(prefix).v_proj").packedForProducts()
            out = try Linear(w, "\(prefix).out_proj").packedForProducts()
            self.heads = heads
        }

        func callAsFunction(_ x: Tensor, mask: Tensor?, causal: Bool) -> Tensor {
            out(Attention.attend(query: query(x), key: key(x), value: value(x), heads: heads, mask: mask, causal: causal))
        }
    }

    struct MLP: Sendable {
        let fc1: Linear, fc2: Linear
        let activation: Activation

        func callAsFunction(_ x: Tensor) -> Tensor {
            var h = fc1(x)
            h.apply(activation)
            return fc2(h)
        }
    }

    let layerNorm1: LayerNorm
    let selfAttention: SelfAttention
    let layerNorm2: LayerNorm
    let mlp: MLP

    init(_ w: WeightSource, _ prefix: String, heads: Int, activation: Activation, eps: Float) throws {
        layerNorm1 = try LayerNorm(w, "\(prefix).layer_norm1", eps: eps)
        selfAttention = try SelfAttention(w, "\(prefix).self_attn", heads: heads)
        layerNorm2 = try LayerNorm(w, "\(prefix).layer_norm2", eps: eps)
        // Packed copies of the weights: a batch of images is hundreds of rows through every linear.
        mlp = MLP(fc1: try Linear(w, "\(prefix).mlp.fc1").packedForProducts(),
                  fc2: try Linear(w, "\(prefix).mlp.fc2").packedForProducts(), activation: activation)
    }

    func callAsFunction(_ x: Tensor, mask: Tensor? = nil, causal: Bool = false) -> Tensor {
        let h = x + selfAttention(layerNorm1(x), mask: mask, causal: causal)
        return h + mlp(layerNorm2(h))
    }
}

/// `encoder.layers.*` of either tower.
struct CLIPEncoder: Sendable {
    let layers: [CLIPEncoderLayer]

    init(_ w: WeightSource, _ prefix: String, count: Int, heads: Int, activation: Activation, eps: Float) throws {
        layers = try (0..<count).map {
            try CLIPEncoderLayer(w, "\(prefix).layers.\($0)", heads: heads, activation: activation, eps: eps)
        }
    }

    /// Runs the first `upTo` layers (all of them when nil).
    func callAsFunction(_ x: Tensor, mask: Tensor? = nil, causal: Bool = false, upTo: Int? = nil) -> Tensor {
        var x = x
        for layer in layers.prefix(upTo ?? layers.count) { x = layer(x, mask: mask, causal: causal) }
        return x
    }
}
