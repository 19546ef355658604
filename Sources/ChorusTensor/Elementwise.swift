import CKernels
import Foundation

/// Activations, as the reference libraries define them.
public enum Activation: String, Sendable, Codable {
    /// erf-based GELU (PyTorch's default, `gelu`).
    case gelu
    /// tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    case geluTanh = "gelu_new"
    /// x·σ(1.702x), CLIP's `quick_gelu`.
    case quickGelu = "quick_gelu"
    case silu
    case relu
    case tanh
    case sigmoid

    /// The activation named in a Hugging Face config (`hidden_act`).
    public init?(configName: String) {
        switch configName {
        case "gelu": self = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluTanh
        case "quick_gelu": self = .quickGelu
        case "silu", "swish": self = .silu
        case "relu": self = .relu
        case "tanh": self = .tanh
        case "sigmoid": self = .sigmoid
        default: return nil
        }
    }
}

extension Activation {
    /// In place over `count` floats from `base`, on the calling thread (for kernels that apply it to the
    /// rows they have just written, while those are in cache).
    public func apply(_ base: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .gelu:
            for i in 0..<count { let v = base[i]; base[i] = 0.5 * v * (1 + fastErf(v * 0.70710678118654752)) }
        case .geluTanh:
            for i in 0..<count {
                let v = base[i]
                base[i] = 0.5 * v * (1 + fastTanh(0.79788456080286536 * (v + 0.044715 * v * v * v)))
            }
        case .quickGelu:
            if VectorMath.avx512, chorus_silu(base, count, 1.702) == 0 { return }
            for i in 0..<count { let v = base[i]; base[i] = v / (1 + fastExp(-1.702 * v)) }
        case .silu:
            if VectorMath.avx512, chorus_silu(base, count, 1) == 0 { return }
            for i in 0..<count { let v = base[i]; base[i] = v / (1 + fastExp(-v)) }
        case .relu:
            for i in 0..<count { base[i] = max(base[i], 0) }
        case .tanh:
            for i in 0..<count { base[i] = fastTanh(base[i]) }
        case .sigmoid:
            for i in 0..<count { base[i] = 1 / (1 + fastExp(-base[i])) }
        }
    }
}

extension Tensor {
    /// Applies `activation` in place, split across cores.
    public mutating func apply(_ activation: Activation) {
        storage.withUnsafeMutableBufferPointer { x in
            let base = x.baseAddress!
            Parallel.chunks(x.count) { range in activation.apply(base + range.lowerBound, count: range.count) }
        }
    }

    /// Consuming, so a temporary (`fc1(x).applying(.gelu)`) is changed in place instead of copied.
    public consuming func applying(_ activation: Activation) -> Tensor {
        var copy = self
        copy.apply(activation)
        return copy
    }

    /// max(x, slope·x), as a select the compiler vectorises.
    public mutating func leakyReLU(slope: Float) {
        storage.withUnsafeMutableBufferPointer { x in
            for i in x.indices { let v = x[i]; x[i] = v < 0 ? v * slope : v }
        }
    }
}

/// Whether SiLU, quick GELU and softmax's exponentials run 16 lanes at a time in C (Sources/CKernels/vector_math.c,
/// AVX-512 CPUs): this module's Swift is compiled for AVX2. `CHORUS_CPU=avx2` (or `plain`) keeps the Swift
/// loops, for A/B runs.
public enum VectorMath {
    public static let avx512: Bool = chorus_vector_math_avx512() != 0

    /// The instruction sets this process's own kernels use on this CPU, for `chorus --version` and start-up
    /// logs: the level chosen, then what it means for the float32 loops and the quantized products of GGUF weights.
    public static var features: String {
        let float = CPULevel.chosen == .plain ? "Swift loops" : avx512 ? "AVX-512" : "AVX2 + FMA"
        let quantized = switch QuantizedMatrix.kernelLevel {
        case 2...: "AVX512-VNNI"
        case 1: "AVX2"
        default: "none (dequantized to float32)"
        }
        return "\(CPULevel.choice): float32 \(float); quantized products \(quantized)"
    }
}


/// e^x to about 1 ulp without libm's call and errno handling, in a form the compiler vectorises:
/// x = n·ln2 + r with |r| ≤ ln2/2, e^r by its degree-6 Taylor polynomial, 2^n put into the exponent.
/// Inputs are clamped to [−87.3, 88] (past them e^x leaves the normal floats anyway), so it never returns inf.
@inlinable @inline(__always)
public func fastExp(_ x: Float) -> Float {
    let x = min(max(x, -87.3), 88.0)
    // Round x·log2(e) to an integer by adding 1.5·2²³: the sum's low mantissa bits are n (no call, no trap).
    let shifted = x * 1.442695041 + 12_582_912
    let n = shifted - 12_582_912
    let r = x - n * 0.693359375 + n * 2.12194440e-4  // ln2 split in two for an exact reduction
    var p: Float = 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    return p * Float(bitPattern: (shifted.bitPattern &- 0x4B40_0000 &+ 127) << 23)
}

/// tanh through fastExp: glibc's tanhf is about 0.1 Gelem/s (TOOLCHAIN.md). Relative error below 1e-6
/// away from zero; near zero, where 1 − e^−2|x| cancels, tanh x = x to float precision. Selects, not
/// branches, so loops over it vectorise.
@inlinable @inline(__always)
public func fastTanh(_ x: Float) -> Float {
    let a = min(abs(x), 9)
    let e = fastExp(-2 * a)
    let t = (1 - e) / (1 + e)
    let signed = x < 0 ? -t : t
    return a < 0.0004 ? x : signed
}

/// erf(x) as a rational function of x (the odd/even minimax pair Eigen and XLA use), within 5e-7 of
/// glibc's erff, which at ≈ 27 ns a call made erf-GELU the slowest op of Whisper's encoder. Past |x| = 4
/// erf is ±1 in float.
@inlinable @inline(__always)
public func fastErf(_ v: Float) -> Float {
    let x = min(max(v, -4), 4)
    let x2 = x * x
    var p: Float = -2.72614225801306e-10
    p = p * x2 + 2.77068142495902e-08
    p = p * x2 - 2.10102402082508e-06
    p = p * x2 - 5.69250639462346e-05
    p = p * x2 - 7.34990630326855e-04
    p = p * x2 - 2.95459980854025e-03
    p = p * x2 - 1.60960333262415e-02
    var q: Float = -1.45660718464996e-05
    q = q * x2 - 2.13374055278905e-04
    q = q * x2 - 1.68282697438203e-03
    q = q * x2 - 7.37332916720468e-03
    q = q * x2 - 1.42647390514189e-02
    return x * p / q
}

// MARK: - arithmetic with broadcasting

public enum BinaryOperator: Sendable {
    case add, subtract, multiply, divide

    @inlinable
    func apply(_ a: Float, _ b: Float) -> Float {
        switch self {
        case .add: return a + b
        case .subtract: return a - b
        case .multiply: return a * b
        case .divide: return a / b
        }
    }
}

extension Tensor {
    /// NumPy broadcasting: shapes align at the right, size-1 dimensions stretch.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for (x, y) in zip(pa, pb) {
            guard x == y || x == 1 || y == 1 else { return nil }
            out.append(max(x, y))
        }
        return out
    }

    /// Consuming, so `x = x + a` adds into x's storage instead of copying it first.
    public consuming func combined(with other: Tensor, _ op: BinaryOperator) -> Tensor {
        if shape == other.shape {
            var out = self
            out.storage.withUnsafeMutableBufferPointer { o in
                other.storage.withUnsafeBufferPointer { b in
                    let ob = o.baseAddress!, bb = b.baseAddress!
                    Parallel.chunks(o.count) { range in
                        for i in range { ob[i] = op.apply(ob[i], bb[i]) }
                    }
                }
            }
            return out
        }
        guard let outShape = Tensor.broadcastShape(shape, other.shape) else {
            preconditionFailure("shapes \(shape) and \(other.shape) do not broadcast")
        }
        let rank = outShape.count
        func strides(_ s: [Int]) -> [Int] {
            let padded = Array(repeating: 1, count: rank - s.count) + s
            var result = [Int](repeating: 0, count: rank)
            var step = 1
            for d in stride(from: rank - 1, through: 0, by: -1) {
                result[d] = padded[d] == 1 ? 0 : step
                step *= padded[d]
            }
            return result
        }
        let sa = strides(shape), sb = strides(other.shape)
        let count = outShape.reduce(1, *)
        var out = [Float](repeating: 0, count: count)
        // The innermost dimension runs as a tight loop; the outer ones walk an index odometer.
        let inner = outShape.last ?? 1
        let innerA = sa.last ?? 0, innerB = sb.last ?? 0
        storage.withUnsafeBufferPointer { a in
            other.storage.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { o in
                    var index = [Int](repeating: 0, count: max(rank - 1, 0))
                    var position = 0
                    while position < count {
                        var offsetA = 0, offsetB = 0
                        for d in 0..<index.count {
                            offsetA += index[d] * sa[d]
                            offsetB += index[d] * sb[d]
                        }
                        for j in 0..<inner {
                            o[position + j] = op.apply(a[offsetA + j * innerA], b[offsetB + j * innerB])
                        }
                        position += inner
                        var d = index.count - 1
                        while d >= 0 {
                            index[d] += 1
                            if index[d] < outShape[d] { break }
                            index[d] = 0
                            d -= 1
                        }
                    }
                }
            }
        }
        return Tensor(shape: outShape, storage: out)
    }

    public static func + (a: consuming Tensor, b: Tensor) -> Tensor { a.combined(with: b, .add) }
    public static func - (a: consuming Tensor, b: Tensor) -> Tensor { a.combined(with: b, .subtract) }
    public static func * (a: consuming Tensor, b: Tensor) -> Tensor { a.combined(with: b, .multiply) }
    public static func / (a: consuming Tensor, b: Tensor) -> Tensor { a.combined(with: b, .divide) }

    public static func * (a: consuming Tensor, s: Float) -> Tensor {
        var out = a
        out.storage.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] *= s } }
        return out
    }

    public static func + (a: consuming Tensor, s: Float) -> Tensor {
        var out = a
        out.storage.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] += s } }
        return out
    }
}
