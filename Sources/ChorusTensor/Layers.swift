/// The layers every transformer is built from, each holding its checkpoint tensors under their own
/// names (`weight`, `bias`), so a weight name leads straight to its field.
public struct Linear: Sendable {
    public let weight: Tensor
    public let bias: Tensor?

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    /// `prefix.weight` and, when present, `prefix.bias`.
    public init(_ source: WeightSource, _ prefix: String, bias: Bool = true) throws {
        weight = try source.tensor("\(prefix).weight")
        self.bias = bias ? try source.tensor("\(prefix).bias") : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        MatMul.linear(x, weight: weight, bias: bias)
    }
}

public struct LayerNorm: Sendable {
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(_ source: WeightSource, _ prefix: String, eps: Float = 1e-5) throws {
        weight = try source.tensor("\(prefix).weight")
        bias = try source.tensor("\(prefix).bias")
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.layerNorm(weight: weight, bias: bias, eps: eps)
    }
}

/// Llama's `LlamaRMSNorm`: no mean subtraction, no bias.
public struct RMSNorm: Sendable {
    public let weight: Tensor
    public let eps: Float

    public init(_ source: WeightSource, _ prefix: String, eps: Float) throws {
        weight = try source.tensor("\(prefix).weight")
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.rmsNorm(weight: weight, eps: eps)
    }
}
