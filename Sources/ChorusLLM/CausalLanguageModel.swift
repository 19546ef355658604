import ChorusTensor

/// What decoding needs of a language model, whichever architecture: token embeddings, the layers over a
/// KV cache, and the head that turns hidden states into logits. Llama and Gemma 3 answer it.
public protocol CausalLanguageModel: Sendable {
    var vocabularySize: Int { get }
    var hiddenSize: Int { get }
    func newCache(capacity: Int) -> LlamaCache
    /// Token ids → embeddings [T, hidden].
    func embed(_ ids: [Int]) -> Tensor
    /// Embeddings [T, hidden] continuing the cached sequence → final hidden states [T, hidden].
    func forward(_ embeddings: Tensor, cache: inout LlamaCache) -> Tensor
    /// Hidden states [T, hidden] → logits [T, vocabulary].
    func logits(_ hidden: Tensor) -> Tensor
}

extension LlamaModel: CausalLanguageModel {
    public var vocabularySize: Int { config.vocabSize }
}

extension CausalLanguageModel {
    public func newCache() -> LlamaCache { newCache(capacity: 256) }
}

/// The rows of an embedding table [vocabulary, hidden] for `ids`, times `scale` (Gemma's √hidden).
/// Ids come from the tokenizer or the generator, never from a request's numbers: one outside the table
/// is a bug, and stops here.
func embeddingRows(_ table: Tensor, _ ids: [Int], scale: Float = 1) -> Tensor {
    let (vocabulary, h) = (table.shape[0], table.shape[1])
    var out = [Float](repeating: 0, count: ids.count * h)
    table.storage.withUnsafeBufferPointer { rows in
        out.withUnsafeMutableBufferPointer { dst in
            for (t, id) in ids.enumerated() {
                precondition((0..<vocabulary).contains(id), "token id \(id) is outside the vocabulary of \(vocabulary)")
                if scale == 1 {
                    (dst.baseAddress! + t * h).update(from: rows.baseAddress! + id * h, count: h)
                } else {
                    for i in 0..<h { dst[t * h + i] = rows[id * h + i] * scale }
                }
            }
        }
    }
    return Tensor(shape: [ids.count, h], storage: out)
}
