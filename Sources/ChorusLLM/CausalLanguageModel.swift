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
