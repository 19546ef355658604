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

/// The middle of a gated feed-forward unit (Llama's SwiGLU, Gemma's GeGLU): the stacked gate/up projection's
/// output [T, 2·I] → act(gate) · up [T, I].
func gatedActivation(_ gateUp: Tensor, _ activation: Activation) -> Tensor {
    let width = gateUp.shape[gateUp.rank - 1] / 2
    let parts = gateUp.splitColumns(width, width)
    var gate = parts.0
    let up = parts.1
    gate.apply(activation)
    gate.storage.withUnsafeMutableBufferPointer { g in
        up.storage.withUnsafeBufferPointer { u in
            for i in 0..<g.count { g[i] *= u[i] }
        }
    }
    return gate
}
