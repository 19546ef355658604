/// The layers every transformer is built from, each holding its checkpoint tensors under their own
/// names (`weight`, `bias`), so a weight name leads straight to its field.
public struct Linear: Sendable {
    /// The float32 weight [out, in], unless the layer keeps it packed or quantized instead.
    private var floats: Tensor?
    public let bias: Tensor?

    /// The weight in GGML's quantized blocks (GGUF files), as row blocks stacked one after the other (each
    /// may be of its own type, as Gemma's q/k/v are): products quantize the input once and run
    /// `QuantizedMatrix.product`, for one token or a whole prompt.
    public private(set) var quantized: [QuantizedMatrix]?

    /// The weight in int8 with a scale per output row (`quantizedToInt8`), for the VNNI kernel.
    public private(set) var int8: Int8Matrix?

    /// [out, in]. A packed or quantized layer unpacks it on each read: only a model's set-up reads it.
    public var weight: Tensor {
        if let floats { return floats }
        if let int8 { return int8.dequantized() }
        if let quantized {
            return Tensor(shape: [outFeatures, inFeatures], storage: quantized.flatMap { $0.dequantized().storage })
        }
        return packed!.unpackedWeight()  // checked: every initializer sets floats, quantized, int8 or packed
    }

    public var inFeatures: Int { floats?.shape[1] ?? quantized?[0].columns ?? int8?.columns ?? packed!.inFeatures }  // checked: one of the four is set

    public var outFeatures: Int { floats?.shape[0] ?? quantized?.reduce(0) { $0 + $1.rows } ?? int8?.rows ?? packed!.outFeatures }  // checked: one of the four is set

    public init(weight: Tensor, bias: Tensor?) {
        self.floats = weight
        self.bias = bias
    }

    public init(weight: LinearWeight, bias: Tensor?) {
        switch weight {
        case .floats(let t): floats = t
        case .quantized(let q): quantized = [q]
        case .int8(let w): int8 = w
        }
        self.bias = bias
    }

    /// `prefix.weight` and, when present, `prefix.bias`; the weight as the source keeps it (`linearWeight`).
    public init(_ source: WeightSource, _ prefix: String, bias: Bool = true) throws {
        self.init(weight: try source.linearWeight("\(prefix).weight"), bias: bias ? try source.tensor("\(prefix).bias") : nil)
    }

    /// Layers over the same input stacked into one (q/k/v, gate/up): the output is theirs side by side,
    /// and a decoded token streams all their weights in one product. Quantized parts stay quantized when
    /// all are; a mix is stacked as float32.
    public init(stacking parts: [Linear]) {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.inFeatures == parts[0].inFeatures }, "Linear(stacking:) needs parts over one input")
        let biases = parts.compactMap(\.bias)
        precondition(biases.isEmpty || biases.count == parts.count, "Linear(stacking:): some parts have a bias, some not")
        bias = biases.isEmpty ? nil : Tensor(shape: [parts.reduce(0) { $0 + $1.outFeatures }], storage: biases.flatMap(\.storage))
        if parts.allSatisfy({ $0.quantized != nil }) {
            quantized = parts.flatMap { $0.quantized ?? [] }
        } else {
            floats = Tensor(shape: [parts.reduce(0) { $0 + $1.outFeatures }, parts[0].inFeatures], storage: parts.flatMap(\.weight.storage))
        }
    }

    /// Rows `ids` of the weight, times `scale`: a token embedding table read as ggml's get_rows does (an
    /// embedding tied to the LM head is this layer's weight). Ids come from the tokenizer or the generator,
    /// never from a request's numbers: one outside the table is a bug, and stops here.
    public func weightRows(_ ids: [Int], scale: Float = 1) -> Tensor {
        let (vocabulary, h) = (outFeatures, inFeatures)
        for id in ids { precondition((0..<vocabulary).contains(id), "token id \(id) is outside the vocabulary of \(vocabulary)") }
        if let quantized {
            var out: [Float] = []
            out.reserveCapacity(ids.count * h)
            for id in ids {
                var start = 0
                for part in quantized {
                    if id < start + part.rows { out += part.dequantizedRows([id - start], scale: scale).storage; break }
                    start += part.rows
                }
            }
            return Tensor(shape: [ids.count, h], storage: out)
        }
        let table = weight
        var out = [Float](repeating: 0, count: ids.count * h)
        table.storage.withUnsafeBufferPointer { rows in
            out.withUnsafeMutableBufferPointer { dst in
                for (t, id) in ids.enumerated() {
                    for i in 0..<h { dst[t * h + i] = scale == 1 ? rows[id * h + i] : rows[id * h + i] * scale }
                }
            }
        }
        return Tensor(shape: [ids.count, h], storage: out)
    }

    /// The weight again as halves, for products of a few rows, when every value is exactly a half.
    public private(set) var halves: HalfMatrix?

    /// This layer keeping its weight as halves too, when the checkpoint is float16 (CTranslate2's Whisper
    /// files are): a decoder step, one row per sequence, then reads half the bytes for the same values.
    /// Longer inputs still go to sgemm on the float32 weight, for which the product is compute-bound.
    /// `when` is for tests: debug builds widen halves too slowly to use them.
    public func keepingHalves(when worthIt: Bool = HalfMatrix.worthUsing) -> Linear {
        guard quantized == nil, int8 == nil else { return self }
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
        guard let floats, quantized == nil, halves == nil, let packed = PackedLinearWeight(weight: floats, bias: bias, columns: columns) else {
            return self
        }
        var copy = self
        copy.packed = packed
        copy.floats = nil
        return copy
    }

    /// This layer with its weight in int8 (`Int8Matrix`) in place of float32, a quarter of the bytes: every
    /// product then quantizes its input too and sums in int32. Unchanged where the kernel does not run
    /// (below `CPULevel.avx512VNNI`) or for a layer already quantized or packed.
    public func quantizedToInt8() -> Linear {
        guard let floats, quantized == nil, packed == nil, let matrix = Int8Matrix(quantizing: floats) else { return self }
        var copy = self
        (copy.int8, copy.floats, copy.halves) = (matrix, nil, nil)
        return copy
    }

    /// Whether products run on an int8 weight.
    public var isInt8: Bool { int8 != nil }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let packed { return packed.apply(x) }
        if let int8 { return int8.timesTransposed(x, bias: bias) }
        if let quantized {
            let rows = x.count / max(inFeatures, 1)
            var y = QuantizedMatrix.product(quantized, x.reshaped([rows, inFeatures]))
            if let bias { y.addRowwise(bias) }
            return y.reshaped(Array(x.shape.dropLast()) + [outFeatures])
        }
        let weight = floats!  // checked: neither packed, quantized nor int8, so float32
        let rows = x.count / max(weight.shape[1], 1)
        if let halves, rows <= HalfMatrix.rowsWorthIt {
            var y = halves.timesTransposed(x.reshaped([rows, weight.shape[1]]))
            if let bias { y.addRowwise(bias) }
            return y.reshaped(Array(x.shape.dropLast()) + [weight.shape[0]])
        }
        return MatMul.linear(x, weight: weight, bias: bias)
    }
}

extension Tensor {
    /// [rows, a + b] → its first a columns and its last b, each [rows, ·] (a stacked layer's outputs).
    public func splitColumns(_ a: Int, _ b: Int) -> (Tensor, Tensor) {
        let parts = splitColumns([a, b])
        return (parts[0], parts[1])
    }

    /// [rows, a + b + c] → three tensors of a, b and c columns.
    public func splitColumns(_ a: Int, _ b: Int, _ c: Int) -> (Tensor, Tensor, Tensor) {
        let parts = splitColumns([a, b, c])
        return (parts[0], parts[1], parts[2])
    }

    func splitColumns(_ widths: [Int]) -> [Tensor] {
        let total = widths.reduce(0, +), rows = count / max(total, 1)
        precondition(rows * total == count, "splitColumns: \(shape) into \(widths)")
        var offset = 0
        return widths.map { width in
            var out = [Float].unset(rows * width)
            storage.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for r in 0..<rows { (dst.baseAddress! + r * width).update(from: src.baseAddress! + r * total + offset, count: width) }  // checked: inside the loop over rows, so neither is empty
                }
            }
            offset += width
            return Tensor(shape: [rows, width], storage: out)
        }
    }

    /// self [rows, n] += v [n] on every row (a bias).
    mutating func addRowwise(_ v: Tensor) {
        let n = v.count
        storage.withUnsafeMutableBufferPointer { o in
            v.storage.withUnsafeBufferPointer { b in
                for r in 0..<(o.count / max(n, 1)) { for i in 0..<n { o[r * n + i] += b[i] } }
            }
        }
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
