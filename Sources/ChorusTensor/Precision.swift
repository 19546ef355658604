/// The arithmetic a model's linear layers run in, chosen per model at load (`--precision`).
public enum Precision: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Float32 products, as the reference libraries compute.
    case float32
    /// Int8 weights with a scale per output row, the input quantized on every product (`Int8Matrix`): a
    /// quarter of the weight bytes and VNNI's integer products. Needs `CPULevel.avx512VNNI`.
    case int8

    public var description: String { rawValue }

    /// Whether this precision runs at the process's CPU level.
    public var runsHere: Bool { self == .float32 || Int8Matrix.supported }

    /// `requested` where it runs here, else float32 with the reason, for the log.
    public static func available(_ requested: Precision) -> (precision: Precision, note: String?) {
        guard !requested.runsHere else { return (requested, nil) }
        return (.float32, "\(requested) needs AVX-512 VNNI, and this process's kernels run at \(CPULevel.chosen): float32 instead")
    }

    /// The weights a model at this precision loads: int8 quantizes every float32 linear weight it asks for.
    public func weights(_ source: WeightSource) -> WeightSource {
        self == .int8 && runsHere ? Int8Weights(source) : source
    }
}

/// Answers a model's linear weights in int8 (`Int8Matrix`, quantized at load as CTranslate2 quantizes), every
/// other tensor as the source has it. Weights that are not a matrix (convolutions), and those already kept
/// quantized (GGUF blocks), are passed on unchanged.
public struct Int8Weights: WeightSource {
    public let base: WeightSource

    public init(_ base: WeightSource) { self.base = base }

    public var names: [String] { base.names }

    public func tensor(_ name: String) throws -> Tensor { try base.tensor(name) }

    public func linearWeight(_ name: String) throws -> LinearWeight {
        let weight = try base.linearWeight(name)
        guard case .floats(let floats) = weight, let matrix = Int8Matrix(quantizing: floats) else { return weight }
        return .int8(matrix)
    }
}
