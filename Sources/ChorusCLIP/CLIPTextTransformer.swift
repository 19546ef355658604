import ChorusTensor

/// `text_model`: token and position embeddings, a causal encoder, a final layer norm; the sequence is
/// pooled at its end-of-text token.
public struct CLIPTextTransformer: Sendable {
    struct Embeddings: Sendable {
        let tokenEmbedding: Tensor
        let positionEmbedding: Tensor
    }

    let embeddings: Embeddings
    let encoder: CLIPEncoder
    let finalLayerNorm: LayerNorm
    let config: CLIPConfig.Text

    public var width: Int { config.hiddenSize }
    public var maxTokens: Int { config.maxPositionEmbeddings }

    public init(_ w: WeightSource, _ prefix: String = "text_model", config: CLIPConfig.Text, file: String) throws {
        embeddings = Embeddings(tokenEmbedding: try w.tensor("\(prefix).embeddings.token_embedding.weight"),
                                positionEmbedding: try w.tensor("\(prefix).embeddings.position_embedding.weight"))
        encoder = try CLIPEncoder(w, "\(prefix).encoder", count: config.numHiddenLayers, heads: config.numAttentionHeads,
                                  activation: try .named(config.hiddenAct, in: file), eps: config.layerNormEps)
        finalLayerNorm = try LayerNorm(w, "\(prefix).final_layer_norm", eps: config.layerNormEps)
        self.config = config
    }

    /// Token ids of equal length [B][T] with their attention masks (1 = token, 0 = padding) →
    /// (last hidden state [B, T, D], pooled [B, D]).
    public func callAsFunction(ids: [[Int]], attentionMask: [[Int]]? = nil) -> (lastHiddenState: Tensor, pooled: Tensor) {
        let batch = ids.count, length = ids.first?.count ?? 0
        precondition(ids.allSatisfy { $0.count == length }, "CLIP text batches are padded to one length")
        precondition(length <= config.maxPositionEmbeddings, "CLIP text takes at most \(config.maxPositionEmbeddings) tokens")
        let vocabulary = embeddings.tokenEmbedding.shape[0]
        let flat = ids.flatMap { $0 }.map { min(max($0, 0), vocabulary - 1) }
        let positions = embeddings.positionEmbedding.slice(axis: 0, 0..<length).reshaped([1, length, width])
        var x = embeddings.tokenEmbedding.embedding(flat).reshaped([batch, length, width]) + positions
        x = encoder(x, mask: attentionMask.flatMap { paddingMask($0, length: length) }, causal: true)
        x = finalLayerNorm(x)
        var pooled = [Float](repeating: 0, count: batch * width)
        for (b, row) in ids.enumerated() {
            let at = poolingPosition(row)
            for i in 0..<width { pooled[b * width + i] = x.storage[(b * length + at) * width + i] }
        }
        return (x, Tensor(shape: [batch, width], storage: pooled))
    }

    /// transformers: configs from before the eos_token_id fix (eos_token_id 2) pool at the highest id,
    /// which is <|endoftext|> in CLIP's vocabulary; newer ones at the first eos_token_id.
    func poolingPosition(_ row: [Int]) -> Int {
        if config.eosTokenId == 2 {
            return row.indices.max { row[$0] < row[$1] } ?? 0
        }
        return row.firstIndex(of: config.eosTokenId) ?? 0
    }

    /// Additive [B, T, T] mask hiding padded keys (the causal part is applied by attention itself).
    private func paddingMask(_ mask: [[Int]], length: Int) -> Tensor? {
        guard mask.contains(where: { $0.contains(0) }) else { return nil }
        var values = [Float](repeating: 0, count: mask.count * length * length)
        for (b, row) in mask.enumerated() {
            for j in 0..<length where row[j] == 0 {
                for i in 0..<length { values[(b * length + i) * length + j] = -.greatestFiniteMagnitude }
            }
        }
        return Tensor(shape: [mask.count, length, length], storage: values)
    }
}
