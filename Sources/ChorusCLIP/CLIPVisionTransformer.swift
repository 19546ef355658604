import ChorusTensor

/// `vision_model`: a ViT. Patches are embedded by one matrix product (the patch convolution has stride
/// equal to its kernel, so it is a linear map of each flattened patch), a class token is prepended,
/// positions added, then pre-norm, the encoder, and a post-norm of the class token.
public struct CLIPVisionTransformer: Sendable {
    struct Embeddings: Sendable {
        let classEmbedding: Tensor
        /// patch_embedding.weight [D, C, P, P] viewed as [D, C·P·P].
        let patchEmbedding: Tensor
        let positionEmbedding: Tensor
    }

    let embeddings: Embeddings
    let preLayerNorm: LayerNorm
    let encoder: CLIPEncoder
    let postLayerNorm: LayerNorm
    let config: CLIPConfig.Vision

    public var width: Int { config.hiddenSize }
    public var layerCount: Int { config.numHiddenLayers }
    public var patchesPerSide: Int { config.imageSize / config.patchSize }

    /// `prefix` is `vision_model` in a CLIPModel, `vision_tower.vision_model` (or similar) inside LLaVA.
    public init(_ w: WeightSource, _ prefix: String = "vision_model", config: CLIPConfig.Vision, file: String) throws {
        let patch = try w.tensor("\(prefix).embeddings.patch_embedding.weight")
        let p = config.patchSize, c = config.numChannels
        guard patch.shape == [config.hiddenSize, c, p, p] else {
            throw WeightFileError(file, "\(prefix).embeddings.patch_embedding.weight is \(patch.shape), expected \([config.hiddenSize, c, p, p])")
        }
        embeddings = Embeddings(classEmbedding: try w.tensor("\(prefix).embeddings.class_embedding"),
                                patchEmbedding: patch.reshaped([config.hiddenSize, c * p * p]),
                                positionEmbedding: try w.tensor("\(prefix).embeddings.position_embedding.weight"))
        // "pre_layrnorm" is the checkpoint's own spelling.
        preLayerNorm = try LayerNorm(w, "\(prefix).pre_layrnorm", eps: config.layerNormEps)
        encoder = try CLIPEncoder(w, "\(prefix).encoder", count: config.numHiddenLayers, heads: config.numAttentionHeads,
                                  activation: try .named(config.hiddenAct, in: file), eps: config.layerNormEps)
        postLayerNorm = try LayerNorm(w, "\(prefix).post_layernorm", eps: config.layerNormEps)
        self.config = config
    }

    /// pixel_values [B, C, S, S] → (last hidden state [B, 1+N, D], pooled [B, D]).
    public func callAsFunction(_ pixels: Tensor) -> (lastHiddenState: Tensor, pooled: Tensor) {
        let x = encoder(embed(pixels))
        let (batch, tokens) = (x.shape[0], x.shape[1])
        var first = [Float](repeating: 0, count: batch * width)
        for b in 0..<batch {
            for i in 0..<width { first[b * width + i] = x.storage[b * tokens * width + i] }
        }
        return (x, postLayerNorm(Tensor(shape: [batch, width], storage: first)))
    }

    /// transformers' `hidden_states[layer]`: 0 is the embeddings after the pre-norm, k the output of
    /// the k-th encoder layer (LLaVA reads layer -2 this way).
    public func hiddenState(_ pixels: Tensor, layer: Int) -> Tensor {
        precondition((0...layerCount).contains(layer), "CLIP vision has hidden states 0...\(layerCount)")
        return encoder(embed(pixels), upTo: layer)
    }

    func embed(_ pixels: Tensor) -> Tensor {
        let (c, s, p) = (config.numChannels, config.imageSize, config.patchSize)
        precondition(pixels.rank == 4 && Array(pixels.shape[1...]) == [c, s, s], "CLIP vision takes [B, \(c), \(s), \(s)], got \(pixels.shape)")
        let batch = pixels.shape[0], side = s / p, patches = side * side, patchLength = c * p * p
        // Each patch flattened in the weight's (channel, row, column) order.
        var flat = [Float](repeating: 0, count: batch * patches * patchLength)
        pixels.storage.withUnsafeBufferPointer { src in
            flat.withUnsafeMutableBufferPointer { dst in
                for b in 0..<batch {
                    for py in 0..<side {
                        for px in 0..<side {
                            let base = (b * patches + py * side + px) * patchLength
                            for ch in 0..<c {
                                for ky in 0..<p {
                                    let from = ((b * c + ch) * s + py * p + ky) * s + px * p
                                    let to = base + (ch * p + ky) * p
                                    (dst.baseAddress! + to).update(from: src.baseAddress! + from, count: p)
                                }
                            }
                        }
                    }
                }
            }
        }
        let patchVectors = MatMul.linear(Tensor(shape: [batch * patches, patchLength], storage: flat), weight: embeddings.patchEmbedding)
        var tokens = [Float](repeating: 0, count: batch * (patches + 1) * width)
        embeddings.positionEmbedding.storage.withUnsafeBufferPointer { pos in
            for b in 0..<batch {
                let out = b * (patches + 1) * width
                for i in 0..<width { tokens[out + i] = embeddings.classEmbedding.storage[i] + pos[i] }
                for n in 0..<patches {
                    for i in 0..<width {
                        tokens[out + (n + 1) * width + i] = patchVectors.storage[(b * patches + n) * width + i] + pos[(n + 1) * width + i]
                    }
                }
            }
        }
        return preLayerNorm(Tensor(shape: [batch, patches + 1, width], storage: tokens))
    }
}
