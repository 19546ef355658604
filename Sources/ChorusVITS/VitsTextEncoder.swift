import ChorusTensor
import Foundation

/// `text_encoder.encoder.layers.N.attention`: multi-head self-attention with relative position
/// embeddings for offsets within ±window (VITS's windowed relative attention), one sequence at a time.
package struct VitsAttention: Sendable {
    package let query: Linear, key: Linear, value: Linear, out: Linear
    /// [2·window+1, headDim]; row window+o belongs to key offset o = j − i.
    package let relativeKeys: Tensor?, relativeValues: Tensor?
    package let heads: Int
    package let window: Int

    package init(_ w: WeightSource, _ prefix: String, config: VitsConfig) throws {
        query = try Linear(w, "\(prefix).q_proj", bias: config.useBias)
        key = try Linear(w, "\(prefix).k_proj", bias: config.useBias)
        value = try Linear(w, "\(prefix).v_proj", bias: config.useBias)
        out = try Linear(w, "\(prefix).out_proj", bias: config.useBias)
        heads = config.numAttentionHeads
        window = config.windowSize
        let d = config.hiddenSize / heads
        relativeKeys = config.windowSize > 0 ? try w.tensor("\(prefix).emb_rel_k").reshaped([-1, d]) : nil
        relativeValues = config.windowSize > 0 ? try w.tensor("\(prefix).emb_rel_v").reshaped([-1, d]) : nil
    }

    /// x [T, H] → [T, H].
    package func callAsFunction(_ x: Tensor) -> Tensor {
        let t = x.shape[0], width = x.shape[1], d = width / heads
        let scale = 1 / Float(d).squareRoot()
        let q = query(x) * scale, k = key(x), v = value(x)
        var output = [Float](repeating: 0, count: t * width)
        for h in 0..<heads {
            let qh = q.slice(axis: 1, (h * d)..<((h + 1) * d))
            let kh = k.slice(axis: 1, (h * d)..<((h + 1) * d))
            let vh = v.slice(axis: 1, (h * d)..<((h + 1) * d))
            var scores = MatMul.matmul(qh, kh, transposeB: true)
            if let relativeKeys {
                // q_i · E_k[j − i] for the offsets inside the window.
                let relative = MatMul.matmul(qh, relativeKeys, transposeB: true)  // [T, 2w+1]
                for i in 0..<t {
                    for j in max(0, i - window)...min(t - 1, i + window) {
                        scores.storage[i * t + j] += relative.storage[i * (2 * window + 1) + (j - i + window)]
                    }
                }
            }
            scores.softmaxLastDimension()
            var context = MatMul.matmul(scores, vh)  // [T, d]
            if let relativeValues {
                // Σ_j p_ij · E_v[j − i] over the window.
                var weights = [Float](repeating: 0, count: t * (2 * window + 1))
                for i in 0..<t {
                    for j in max(0, i - window)...min(t - 1, i + window) {
                        weights[i * (2 * window + 1) + (j - i + window)] = scores.storage[i * t + j]
                    }
                }
                context = context + MatMul.matmul(Tensor(shape: [t, 2 * window + 1], storage: weights), relativeValues)
            }
            for i in 0..<t {
                for c in 0..<d { output[i * width + h * d + c] = context.storage[i * d + c] }
            }
        }
        return out(Tensor(shape: [t, width], storage: output))
    }
}

/// `feed_forward`: two convolutions over time with the activation between, padded to keep the length.
package struct VitsFeedForward: Sendable {
    package let conv1: VitsConv1d, conv2: VitsConv1d
    package let activation: Activation
    package let kernel: Int

    package init(_ w: WeightSource, _ prefix: String, config: VitsConfig) throws {
        conv1 = try VitsConv1d(w, "\(prefix).conv_1")
        conv2 = try VitsConv1d(w, "\(prefix).conv_2")
        guard let activation = Activation(configName: config.hiddenAct) else {
            throw WeightFileError(prefix, "hidden_act '\(config.hiddenAct)' is not supported")
        }
        self.activation = activation
        kernel = config.ffnKernelSize
    }

    /// x [T, H] → [T, H]; padding is (k−1)/2 on the left and k/2 on the right, as transformers pads.
    package func callAsFunction(_ x: Tensor) -> Tensor {
        var h = padTime(x.permuted([1, 0]).reshaped([1, x.shape[1], x.shape[0]]))
        h = conv1(h)
        h.apply(activation)
        h = conv2(padTime(h))
        return h.reshaped([h.shape[1], h.shape[2]]).permuted([1, 0])
    }

    private func padTime(_ x: Tensor) -> Tensor {
        let left = (kernel - 1) / 2, right = kernel / 2
        guard left + right > 0 else { return x }
        let (c, t) = (x.shape[1], x.shape[2])
        let width = t + left + right
        var out = [Float](repeating: 0, count: c * width)
        for ch in 0..<c {
            for i in 0..<t { out[ch * width + left + i] = x.storage[ch * t + i] }
        }
        return Tensor(shape: [1, c, width], storage: out)
    }
}

package struct VitsEncoderLayer: Sendable {
    package let attention: VitsAttention
    package let layerNorm: LayerNorm
    package let feedForward: VitsFeedForward
    package let finalLayerNorm: LayerNorm

    package init(_ w: WeightSource, _ prefix: String, config: VitsConfig) throws {
        attention = try VitsAttention(w, "\(prefix).attention", config: config)
        layerNorm = try LayerNorm(w, "\(prefix).layer_norm", eps: config.layerNormEps)
        feedForward = try VitsFeedForward(w, "\(prefix).feed_forward", config: config)
        finalLayerNorm = try LayerNorm(w, "\(prefix).final_layer_norm", eps: config.layerNormEps)
    }

    /// Post-norm: h = norm(x + attention(x)); out = norm(h + ffn(h)).
    package func callAsFunction(_ x: Tensor) -> Tensor {
        let h = layerNorm(x + attention(x))
        return finalLayerNorm(h + feedForward(h))
    }
}

/// `text_encoder`: token embeddings scaled by √H, the relative-attention encoder, and `project` to the
/// prior's means and log-variances.
package struct VitsTextEncoder: Sendable {
    package let embedTokens: Tensor
    package let layers: [VitsEncoderLayer]
    package let project: VitsConv1d
    package let config: VitsConfig

    package init(_ w: WeightSource, config: VitsConfig) throws {
        embedTokens = try w.tensor("text_encoder.embed_tokens.weight")
        layers = try (0..<config.numHiddenLayers).map { try VitsEncoderLayer(w, "text_encoder.encoder.layers.\($0)", config: config) }
        project = try VitsConv1d(w, "text_encoder.project")
        self.config = config
    }

    /// ids → (hidden [1, H, T], means [1, F, T], log-variances [1, F, T]).
    package func callAsFunction(_ ids: [Int]) -> (hidden: Tensor, means: Tensor, logVariances: Tensor) {
        var x = embedTokens.embedding(ids) * Float(config.hiddenSize).squareRoot()
        for layer in layers { x = layer(x) }
        let hidden = x.permuted([1, 0]).reshaped([1, config.hiddenSize, ids.count])
        let stats = project(hidden)
        return (hidden, stats.channels(0..<config.flowSize), stats.channels(config.flowSize..<(2 * config.flowSize)))
    }
}
