import ChorusTensor

/// The parts of a Gemma 3 text config the forward pass needs (transformers' `Gemma3TextConfig`).
public struct Gemma3Config: Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var rmsNormEps: Float
    /// RoPE bases: global layers and the sliding-window (local) ones.
    public var ropeTheta: Float
    public var ropeLocalBaseFrequency: Float
    public var slidingWindow: Int
    /// Every `slidingWindowPattern`-th layer attends globally, the others over the sliding window.
    public var slidingWindowPattern: Int
    public var maxPositionEmbeddings: Int
    /// Queries are scaled by queryPreAttentionScalar^-½.
    public var queryPreAttentionScalar: Float
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]

    public func isSliding(layer: Int) -> Bool { (layer + 1) % slidingWindowPattern != 0 }
}
