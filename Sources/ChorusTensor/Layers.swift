/// The layers every transformer is built from, each holding its checkpoint tensors under their own
/// names (`weight`, `bias`), so a weight name leads straight to its field.
public struct Linear: Sendable {
    /// The float32 weight [out, in], unless the layer keeps it packed instead (`packedForProducts`).
    private var floats: Tensor?
    public let bias: Tensor?

    /// [out, in]. A packed layer unpacks it on each read: only a model's set-up reads it.
    public var weight: Tensor { floats ?? packed!.unpackedWeight() }

    public var inFeatures: Int { floats?.shape[1] ?? packed!.inFeatures }

    public init(weight: Tensor, bias: Tensor?) {
        self.floats = weight
        self.bias = bias
    }

    /// `prefix.weight` and, when present, `prefix.bias`.
    public init(_ source: WeightSource, _ prefix: String, bias: Bool = true) throws {
        floats = try source.tensor("\(prefix).weight")
        self.bias = bias ? try source.tensor("\(prefix).bias") : nil
    }

    /// The weight again as halves, for products of a few rows, when every value is exactly a half.
    public private(set) var halves: HalfMatrix?

    /// This layer keeping its weight as halves too, when the checkpoint is float16 (CTranslate2's Whisper
    /// files are): a decoder step, one row per sequence, then reads half the bytes for the same values.
    /// Longer inputs still go to sgemm on the float32 weight, for which the product is compute-bound.
    /// `when` is for tests: debug builds widen halves too slowly to use them.
    public func keepingHalves(when worthIt: Bool = HalfMatrix.worthUsing) -> Linear {
        var copy = self
        copy.halves = worthIt ? HalfMatrix(exactly: weight) : nil
        return copy
    }

    /// The weight laid out for the register-blocked product (`PackedLinearWeight`), in place of `floats`.
    public private(set) var packed: PackedLinearWeight?

    /// This layer with its weight packed for the register-blocked product, for models whose linears see
    /// many rows each call (CLIP's towers). The packed weight replaces the float32 one, so memory stays
    /// the same; every product then goes through it. Unchanged where the kernel does not run; `columns` is
    /// for tests, which run every panel width the CPU has.
    public func packedForProducts(columns: Int32? = PackedLinearWeight.best) -> Linear {
        guard let floats, halves == nil, let packed = PackedLinearWeight(weight: floats, bias: bias, columns: columns) else {
            return self
        }
        var copy = self
        copy.packed = packed
        copy.floats = nil
        return copy
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let packed { return packed.apply(x) }
        let weight = floats!
        let rows = x.count / max(weight.shape[1], 1)
        if let halves, rows <= HalfMatrix.rowsWorthIt {
            var y = halves.timesTransposed(x.reshaped([rows, weight.shape[1]]))
            if let bias {
                y.storage.withUnsafeMutableBufferPointer { o in
                    bias.storage.withUnsafeBufferPointer { b in
                        for r in 0..<rows { for i in 0..<b.count { o[r * b.count + i] += b[i] } }
                    }
                }
            }
            return y.reshaped(Array(x.shape.dropLast()) + [weight.shape[0]])
        }
        return MatMul.linear(x, weight: weight, bias: bias)
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

/// `torch.nn.GroupNorm`: statistics per (sample, group of channels), then a per-channel affine.
public struct GroupNorm: Sendable {
    public let weight: Tensor
    public let bias: Tensor
    public let groups: Int
    public let eps: Float

    public init(weight: Tensor, bias: Tensor, groups: Int, eps: Float) {
        self.weight = weight
        self.bias = bias
        self.groups = groups
        self.eps = eps
    }

    public init(_ source: WeightSource, _ prefix: String, groups: Int, eps: Float) throws {
        self.init(weight: try source.tensor("\(prefix).weight"), bias: try source.tensor("\(prefix).bias"), groups: groups, eps: eps)
    }

    /// `activation` (SiLU in diffusers' resnets) is applied in the same pass.
    public func callAsFunction(_ x: Tensor, activation: Activation? = nil) -> Tensor {
        x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps, activation: activation)
    }
}

/// `torch.nn.Conv2d` with square stride and padding, bias optional.
public struct Conv2d: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int

    public init(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) {
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
    }

    /// `prefix.weight` [Cout, Cin, kH, kW] and `prefix.bias`; a missing bias is allowed only when `bias` is false.
    public init(_ source: WeightSource, _ prefix: String, stride: Int = 1, padding: Int = 0, bias: Bool = true) throws {
        self.init(weight: try source.tensor("\(prefix).weight"), bias: bias ? try source.tensor("\(prefix).bias") : nil,
                  stride: stride, padding: padding)
    }

    public var outChannels: Int { weight.shape[0] }

    /// `residual` [N, Cout, Ho, Wo] is added in the pass that writes the output, where the kernel allows.
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
        Convolution.conv2d(x, weight: weight, bias: bias, options: Conv2DOptions(stride: (stride, stride), padding: (padding, padding)),
                           residual: residual)
    }
}
